// Engine benchmarks, each beside a raw-RocksDB baseline measured in the same
// run: the same bytes, the same sync setting, a plain WriteBatch (or
// iterator) with no engine logic. bench/run_engine_bench.sh turns the pairs
// into the ratios recorded in bench/RESULTS.md.
//
//   BM_RawSyncedWrite / BM_EngineAppend        one 600-byte event per call,
//                                              1, 8 and 32 concurrent writers
//   BM_RawSyncedBatch100 / BM_EngineAppend100  100 events per synced call
//   BM_RawReadRange1000 / BM_EngineReadCase1000
//   BM_RawScan / BM_EngineScan                 the whole log, in order
//   BM_RawOpen / BM_EngineOpen                 open a store of
//                                              --recover_events events
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "caseledger/event_store.h"
#include "engine/src/key_format.h"

namespace {

using namespace caseledger;

constexpr size_t kPayloadBytes = 600;
uint64_t g_recover_events = 1000000;
uint64_t g_scan_events = 200000;

std::string Payload(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s = R"({"facts":")";
  while (s.size() + 2 < kPayloadBytes)
    s.push_back(static_cast<char>('a' + rng() % 26));
  return s + "\"}";
}

ProposedEvent Event(uint64_t seed, bool with_id = true) {
  ProposedEvent e;
  if (with_id) e.event_id = EventId::NewV7();
  e.type = "ConcernReported";
  e.actor = Actor{"bench-actor", "reporter"};
  e.correlation_id = "bench";
  e.occurred_at = Timestamp(1767225600000000);
  e.payload = Payload(seed);
  return e;
}

std::string TempPath(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() /
           ("caseledger-bench-" + std::to_string(getpid()) + "-" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

// --- A raw RocksDB with the engine's column families ---------------------

struct RawDb {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs;
  std::string path;
  std::atomic<uint64_t> next{0};

  static std::vector<rocksdb::ColumnFamilyDescriptor> Descs() {
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (const char* n :
         {rocksdb::kDefaultColumnFamilyName.c_str(), internal::kLogCf,
          internal::kStreamIndexCf, internal::kEventIdsCf}) {
      d.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    return d;
  }
  explicit RawDb(std::string p) : path(std::move(p)) {
    rocksdb::DBOptions o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(o, path, Descs(), &cfs, &raw);
    if (!s.ok()) std::abort();
    db.reset(raw);
  }
  ~RawDb() {
    for (auto* h : cfs) (void)db->DestroyColumnFamilyHandle(h);
    (void)db->Close();
    db.reset();
    std::filesystem::remove_all(path);
  }
  // The same three entries an engine append writes per event.
  void AddEvent(rocksdb::WriteBatch* b, const std::string& value) {
    uint64_t pos = ++next;
    std::string pos_value;
    PutBe64(&pos_value, pos);
    (void)b->Put(cfs[1], internal::LogKey(pos), value);
    (void)b->Put(cfs[2], internal::StreamIndexKey("bench-case", pos),
                 pos_value);
    EventId id = EventId::NewV7();
    (void)b->Put(cfs[3], internal::EventIdKey(id), pos_value);
  }
};

// A record of the size the engine stores for Event(): payload plus header,
// ids and hashes.
std::string RawValue(uint64_t seed) {
  return std::string(120, 'h') + Payload(seed);
}

RawDb* g_raw = nullptr;
EventStore* g_store = nullptr;

std::unique_ptr<EventStore> OpenEngine(const std::string& path, bool sync) {
  Options o;
  o.sync = sync;
  std::unique_ptr<EventStore> s;
  Status st = EventStore::Open(o, path, &s);
  if (!st.ok()) {
    std::fprintf(stderr, "open %s: %s\n", path.c_str(), st.ToString().c_str());
    std::abort();
  }
  return s;
}

// --- Durable appends -------------------------------------------------------

void BM_RawSyncedWrite(benchmark::State& state) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::string value = RawValue(static_cast<uint64_t>(state.thread_index()));
  for (auto _ : state) {
    rocksdb::WriteBatch b;
    g_raw->AddEvent(&b, value);
    if (!g_raw->db->Write(wo, &b).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations());
}

// Group-commit figures for the run, reported beside the throughput.
void ReportGroups(benchmark::State& state, const StoreStats& before) {
  if (state.thread_index() != 0) return;
  StoreStats after = g_store->stats();
  double groups =
      static_cast<double>(after.groups_committed - before.groups_committed);
  if (groups == 0) return;
  state.counters["events_per_fsync"] =
      static_cast<double>(after.events_committed - before.events_committed) /
      groups;
  state.counters["decide_us_per_group"] =
      static_cast<double>(after.decide_micros - before.decide_micros) / groups;
  state.counters["write_us_per_group"] =
      static_cast<double>(after.write_micros - before.write_micros) / groups;
}

void BM_EngineAppend(benchmark::State& state) {
  const StoreStats before = g_store->stats();
  std::string stream = "bench-" + std::to_string(state.thread_index());
  const ProposedEvent proto =
      Event(static_cast<uint64_t>(state.thread_index()));
  for (auto _ : state) {
    std::vector<ProposedEvent> events{proto};
    events[0].event_id = EventId::NewV7();
    auto r = g_store->Append(stream, ExpectedVersion::Any(), std::move(events));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  ReportGroups(state, before);
}

void BM_RawSyncedBatch100(benchmark::State& state) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  std::vector<std::string> values;
  for (uint64_t i = 0; i < 100; ++i) values.push_back(RawValue(i));
  for (auto _ : state) {
    rocksdb::WriteBatch b;
    for (const auto& v : values) g_raw->AddEvent(&b, v);
    if (!g_raw->db->Write(wo, &b).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

void BM_EngineAppend100(benchmark::State& state) {
  std::vector<ProposedEvent> protos;
  for (uint64_t i = 0; i < 100; ++i) protos.push_back(Event(i));
  for (auto _ : state) {
    std::vector<ProposedEvent> events = protos;
    for (auto& e : events) e.event_id = EventId::NewV7();
    auto r = g_store->Append("bench-batch", ExpectedVersion::Any(),
                             std::move(events));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

// --- Reads -----------------------------------------------------------------

// A store holding one 1,000-event case among others, and g_scan_events in
// all, built once (without sync: it is the reads that are measured).
struct ReadFixture {
  std::string engine_path = TempPath("read-engine");
  std::string raw_path = TempPath("read-raw");
  std::unique_ptr<EventStore> store;
  std::unique_ptr<RawDb> raw;

  ReadFixture() {
    store = OpenEngine(engine_path, false);
    raw = std::make_unique<RawDb>(raw_path);
    rocksdb::WriteOptions wo;
    uint64_t written = 0, n = 0;
    while (written < g_scan_events) {
      std::vector<ProposedEvent> events;
      rocksdb::WriteBatch b;
      for (int i = 0; i < 100; ++i) {
        events.push_back(Event(n++));
        raw->AddEvent(&b, RawValue(n));
      }
      // Every tenth batch goes to the 1,000-event case.
      std::string stream = (written / 100) % 10 == 0 && written < 100000
                               ? "the-case"
                               : "other-" + std::to_string(written % 997);
      auto r = store->Append(stream, ExpectedVersion::Any(), std::move(events));
      if (!r.ok() || !raw->db->Write(wo, &b).ok()) std::abort();
      written += 100;
    }
    // Reopen so reads come from SST files, not memtables.
    store.reset();
    store = OpenEngine(engine_path, false);
    rocksdb::FlushOptions fo;
    (void)raw->db->Flush(fo, raw->cfs);
  }
  ~ReadFixture() {
    store.reset();
    std::filesystem::remove_all(engine_path);
  }
};
std::unique_ptr<ReadFixture> g_read_fixture;
ReadFixture* ReadStore() {
  if (!g_read_fixture) g_read_fixture = std::make_unique<ReadFixture>();
  return g_read_fixture.get();
}

void BM_RawReadRange1000(benchmark::State& state) {
  ReadStore();  // built before the timed loop
  // 1,000 log records by key, the raw equivalent of a case read.
  for (auto _ : state) {
    std::unique_ptr<rocksdb::Iterator> it(ReadStore()->raw->db->NewIterator(
        rocksdb::ReadOptions(), ReadStore()->raw->cfs[1]));
    size_t n = 0, bytes = 0;
    for (it->Seek(internal::LogKey(5001)); it->Valid() && n < 1000;
         it->Next(), ++n) {
      bytes += it->value().size();
    }
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_EngineReadCase1000(benchmark::State& state) {
  ReadStore();  // built before the timed loop
  for (auto _ : state) {
    auto r = ReadStore()->store->ReadStream("the-case", StreamVersion(1),
                                            Direction::kForward, 1000);
    if (!r.ok() || r->size() != 1000) state.SkipWithError("short case read");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_RawScan(benchmark::State& state) {
  ReadStore();  // built before the timed loop
  for (auto _ : state) {
    std::unique_ptr<rocksdb::Iterator> it(ReadStore()->raw->db->NewIterator(
        rocksdb::ReadOptions(), ReadStore()->raw->cfs[1]));
    size_t n = 0, bytes = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) {
      bytes += it->key().size() + it->value().size();
    }
    benchmark::DoNotOptimize(bytes);
    state.SetItemsProcessed(static_cast<int64_t>(n) + state.items_processed());
  }
}

void BM_EngineScan(benchmark::State& state) {
  ReadStore();  // built before the timed loop
  for (auto _ : state) {
    uint64_t after = 0, n = 0;
    for (;;) {
      auto page = ReadStore()->store->ReadAll(GlobalPosition(after), 1000);
      if (!page.ok()) state.SkipWithError(page.status().ToString().c_str());
      if (!page.ok() || page->empty()) break;
      after = page->back().position.value();
      n += page->size();
    }
    state.SetItemsProcessed(static_cast<int64_t>(n) + state.items_processed());
  }
}

// --- Open / recover ----------------------------------------------------------

std::string g_recover_path;

// Builds the store once, on first use.
void BuildRecoverStore() {
  if (!g_recover_path.empty()) return;
  g_recover_path = TempPath("recover");
  auto store = OpenEngine(g_recover_path, false);
  uint64_t n = 0;
  while (n < g_recover_events) {
    std::vector<ProposedEvent> events;
    for (int i = 0; i < 500; ++i)
      events.push_back(Event(n + static_cast<uint64_t>(i), false));
    auto r = store->Append("case-" + std::to_string((n / 500) % 5000),
                           ExpectedVersion::Any(), std::move(events));
    if (!r.ok()) std::abort();
    n += 500;
  }
  Status s = store->Close();
  if (!s.ok()) std::abort();
}

void BM_EngineOpen(benchmark::State& state) {
  BuildRecoverStore();
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    auto store = OpenEngine(g_recover_path, true);
    auto t1 = std::chrono::steady_clock::now();
    if (store->Head().position.value() != g_recover_events) {
      state.SkipWithError("wrong head after open");
    }
    store.reset();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.counters["events"] = static_cast<double>(g_recover_events);
}

void BM_RawOpen(benchmark::State& state) {
  BuildRecoverStore();
  for (auto _ : state) {
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (const char* n :
         {rocksdb::kDefaultColumnFamilyName.c_str(), internal::kLogCf,
          internal::kStreamIndexCf, internal::kEventIdsCf, internal::kStreamsCf,
          internal::kMetaCf}) {
      d.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> cfs;
    rocksdb::DB* raw = nullptr;
    auto t0 = std::chrono::steady_clock::now();
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), g_recover_path, d, &cfs, &raw);
    auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    for (auto* h : cfs) (void)raw->DestroyColumnFamilyHandle(h);
    if (raw) (void)raw->Close();
    delete raw;
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
}

void Writers(benchmark::internal::Benchmark* b) {
  b->Threads(1)->Threads(8)->Threads(32)->UseRealTime()->MinTime(2.0);
}

BENCHMARK(BM_RawSyncedWrite)->Apply(Writers);
BENCHMARK(BM_EngineAppend)->Apply(Writers);
BENCHMARK(BM_RawSyncedBatch100)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_EngineAppend100)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RawReadRange1000)->MinTime(1.0);
BENCHMARK(BM_EngineReadCase1000)->MinTime(1.0);
BENCHMARK(BM_RawScan)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineScan)->Iterations(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawOpen)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineOpen)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  // Our own flags, before Google Benchmark's.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--recover_events=", 0) == 0) {
      g_recover_events = std::stoull(a.substr(17));
    } else if (a.rfind("--scan_events=", 0) == 0) {
      g_scan_events = std::stoull(a.substr(14));
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());

  std::string write_path = TempPath("write-engine");
  RawDb raw(TempPath("write-raw"));
  g_raw = &raw;
  auto store = OpenEngine(write_path, getenv("BENCH_NOSYNC") == nullptr);
  g_store = store.get();

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  g_read_fixture.reset();
  store.reset();
  std::filesystem::remove_all(write_path);
  if (!g_recover_path.empty()) std::filesystem::remove_all(g_recover_path);
  return 0;
}

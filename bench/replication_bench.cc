// Replication (issue 23), against a three-server JetStream cluster of
// Debian's nats-server that the benchmark starts on loopback (R3 stream,
// file storage: every server fsyncs as JetStream does by default).
//
//   replication_bench [--cases=N] [benchmark flags]
//
// BM_QuorumCost: four writers append durable ~1 KB events back to back,
// 5 s in each mode, in the same run:
//   local  - acknowledged once durable here; the publisher follows behind,
//            and the replication lag (acknowledgement to stored by the
//            stream) is measured for every append;
//   quorum - acknowledged once the stream has stored the append (what the
//            server's quorum mode waits for, through WhenStored).
// The cost of quorum mode is its p50 over local's p50. Each case has data
// keys, which the publisher looks up for every batch, as in a server.
//
// BM_CatchUpAgainstRebuild: a store seeded with N realistic cases (sealed,
// through the command path) is published; then a new follower applies the
// whole stream (every record's hashes checked, synced writes, the data
// keys taken from their stream into its own key store), against a rebuild
// of the read models from the same log; both in events/s.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include "caseledger/keys/keys.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/replicate/replication.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "caseledger/service/seed.h"
#include "tests/replicate/nats_cluster.h"

namespace caseledger {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

uint64_t g_cases = 2000;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

void Check(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "replication_bench: %s\n", s.ToString().c_str());
    std::abort();
  }
}

struct Cluster {
  std::string dir =
      (std::filesystem::temp_directory_path() /
       ("caseledger-replication-bench-" + std::to_string(getpid())))
          .string();
  std::unique_ptr<testing::NatsCluster> nats;
  Cluster() {
    std::filesystem::create_directories(dir);
    nats = std::make_unique<testing::NatsCluster>(dir);
    if (!nats->Start()) {
      std::fprintf(stderr, "replication_bench: the cluster did not start\n");
      std::abort();
    }
  }
  ~Cluster() {
    nats.reset();
    std::filesystem::remove_all(dir);
  }
  replicate::ReplicationConfig Config(const std::string& name) const {
    replicate::ReplicationConfig c;
    c.servers = nats->urls();
    c.node = name;
    c.stream = "BENCH_" + name;
    c.subjects = "bench-" + name;
    return c;
  }
};

Cluster& C() {
  static Cluster c;
  return c;
}

// Four writers for `duration`; `quorum`: each append waits for the stream.
// Per-append latencies (ms) into *latency; in local mode, the lag from
// acknowledgement to stored into *lag.
void Run(EventStore& store, replicate::Publisher& publisher, bool quorum,
         std::chrono::seconds duration, std::vector<double>* latency,
         std::vector<double>* lag) {
  std::mutex mu;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> pending{0};
  std::vector<std::thread> writers;
  const std::string payload = R"({"note":")" + std::string(1000, 'x') + R"("})";
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      uint64_t i = 0;
      while (!stop.load()) {
        ProposedEvent e;
        e.type = "BenchEvent";
        e.actor = {"bench", "system"};
        e.payload = payload;
        const auto t0 = Clock::now();
        auto r = store.Append(
            "bench-" + std::to_string(t) + "-" + std::to_string(i++ % 50),
            ExpectedVersion::Any(), {std::move(e)});
        Check(r.status());
        if (quorum) {
          std::promise<bool> stored;
          auto f = stored.get_future();
          publisher.WhenStored(r->last_position, 30s,
                               [&stored](bool ok) { stored.set_value(ok); });
          if (!f.get()) Check(Status::Unavailable("not stored within 30 s"));
          std::lock_guard<std::mutex> lk(mu);
          latency->push_back(Ms(Clock::now() - t0));
        } else {
          const auto t1 = Clock::now();
          {
            std::lock_guard<std::mutex> lk(mu);
            latency->push_back(Ms(t1 - t0));
          }
          pending.fetch_add(1);
          publisher.WhenStored(r->last_position, 60s, [&, t1](bool ok) {
            if (ok) {
              std::lock_guard<std::mutex> lk(mu);
              lag->push_back(Ms(Clock::now() - t1));
            }
            pending.fetch_sub(1);
          });
        }
      }
    });
  }
  std::this_thread::sleep_for(duration);
  stop.store(true);
  for (auto& w : writers) w.join();
  while (pending.load() > 0) std::this_thread::sleep_for(10ms);
}

void BM_QuorumCost(benchmark::State& state) {
  Cluster& cluster = C();
  const std::string path = cluster.dir + "/quorum-store";
  std::unique_ptr<EventStore> store;
  Check(EventStore::Open(Options(), path, &store));  // durable: sync on
  // Every case the writers use has two data keys, which the publisher
  // looks up for each batch (and ships once), as it does in a server.
  keys::KeyStoreOptions ko;
  ko.destroyed_list = path + "-keys.destroyed";
  std::unique_ptr<keys::KeyStore> key_store;
  Check(keys::KeyStore::Open(ko, path + "-keys", keys::Kek::Generate(), {},
                             &key_store));
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 50; ++i) {
      Check(key_store
                ->GetOrCreate(
                    "bench-" + std::to_string(t) + "-" + std::to_string(i),
                    {keys::Scope::Case(), keys::Scope::Person("p1")})
                .status());
    }
  }
  auto publisher =
      replicate::Publisher::Start(*store, cluster.Config("quorum"),
                                  {key_store.get(), service::ErasedKeyScopeOf});
  Check(publisher.status());
  // Connected, the stream made and a leader elected, before measuring.
  ProposedEvent warm_up;
  warm_up.type = "BenchEvent";
  warm_up.actor = {"bench", "system"};
  warm_up.payload = "{}";
  Check(store->Append("warm-up", ExpectedVersion::Any(), {warm_up}).status());
  if (!(*publisher)->WaitStored(store->committed_position(), 60s)) {
    Check(Status::Unavailable("the cluster did not store the warm-up"));
  }
  std::vector<double> local, lag, quorum;
  for (auto _ : state) {
    Run(*store, **publisher, false, 5s, &local, &lag);
    Run(*store, **publisher, true, 5s, &quorum, nullptr);
  }
  state.counters["local_appends"] = static_cast<double>(local.size());
  state.counters["local_p50_ms"] = Pct(local, 0.5);
  state.counters["local_p99_ms"] = Pct(local, 0.99);
  state.counters["lag_p50_ms"] = Pct(lag, 0.5);
  state.counters["lag_p99_ms"] = Pct(lag, 0.99);
  state.counters["quorum_appends"] = static_cast<double>(quorum.size());
  state.counters["quorum_p50_ms"] = Pct(quorum, 0.5);
  state.counters["quorum_p99_ms"] = Pct(quorum, 0.99);
  state.counters["quorum_cost_x"] = Pct(quorum, 0.5) / Pct(local, 0.5);
  (*publisher)->Stop();
}
BENCHMARK(BM_QuorumCost)->Iterations(1)->Unit(benchmark::kSecond);

void BM_CatchUpAgainstRebuild(benchmark::State& state) {
  Cluster& cluster = C();
  const std::string path = cluster.dir + "/seeded";
  std::filesystem::create_directories(path);
  SettableClock clock;
  std::unique_ptr<EventStore> store;
  Options o;
  o.sync = false;
  o.clock = clock.Function();
  Check(EventStore::Open(o, path + "/log", &store));
  auto catalog = *domain::EventCatalog::Load();
  service::KeyConfig kc;
  kc.kek_file = path + "/bench.kek";
  if (!std::filesystem::exists(kc.kek_file)) {
    Check(keys::Kek::CreateFile(kc.kek_file).status());
  }
  auto keys = service::OpenDataKeys(path, kc, catalog, nullptr);
  Check(keys.status());
  service::SeedOptions so;
  so.cases = g_cases;
  so.clock = &clock;
  Check(service::SeedCases(*store, catalog, domain::DomainConfig{},
                           *keys->sealer, so)
            .status());
  const LogHead head = store->Head();
  const double events = static_cast<double>(head.position.value());

  auto publisher = replicate::Publisher::Start(
      *store, cluster.Config("catchup"),
      {keys->store.get(), service::ErasedKeyScopeOf});
  Check(publisher.status());
  if (!(*publisher)->WaitStored(head.position, 600s)) {
    Check(Status::Unavailable("the stream did not take the seeded log"));
  }
  (*publisher)->Stop();

  double follow_s = 0, rebuild_s = 0;
  for (auto _ : state) {
    // A new follower: its own store, durable, applying the whole stream.
    const std::string replica_dir = cluster.dir + "/replica";
    std::filesystem::remove_all(replica_dir);
    std::filesystem::remove(cluster.dir + "/replica.checkpoint");
    Options ro;
    ro.replica = true;
    std::unique_ptr<EventStore> replica;
    Check(EventStore::Open(ro, replica_dir, &replica));
    // Its own key store, with the primary's KEK: it takes the keys too.
    std::filesystem::remove_all(replica_dir + "-keys");
    std::filesystem::remove(replica_dir + "-keys.destroyed");
    keys::KeyStoreOptions ko;
    ko.destroyed_list = replica_dir + "-keys.destroyed";
    std::unique_ptr<keys::KeyStore> replica_keys;
    Check(keys::KeyStore::Open(ko, replica_dir + "-keys",
                               *keys::Kek::ReadFile(kc.kek_file), {},
                               &replica_keys));
    const auto t0 = Clock::now();
    auto follower = replicate::Follower::Start(
        *replica, cluster.Config("catchup"),
        cluster.dir + "/replica.checkpoint",
        {replica_keys.get(), service::ErasedKeyScopeOf});
    Check(follower.status());
    if (!(*follower)->WaitApplied(head.position, 600s)) {
      Check(Status::Unavailable("the follower did not catch up"));
    }
    follow_s += std::chrono::duration<double>(Clock::now() - t0).count();
    if (replica->Head().log_hash != head.log_hash) {
      Check(Status::Corruption("the follower's head differs"));
    }
    (*follower)->Stop();

    // The read models rebuilt from the same log.
    std::filesystem::remove_all(path + "/projections");
    const auto t1 = Clock::now();
    auto models = projections::ReadModels::Open(
        path + "/projections", *store, catalog, nullptr,
        "bench-pseudonym-key-0123456789");
    Check(models.status());
    Check((*models)->CatchUp());
    rebuild_s += std::chrono::duration<double>(Clock::now() - t1).count();
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["events"] = events;
  state.counters["follow_events_per_s"] = events * n / follow_s;
  state.counters["rebuild_events_per_s"] = events * n / rebuild_s;
  state.counters["follow_over_rebuild_x"] = rebuild_s / follow_s;
}
BENCHMARK(BM_CatchUpAgainstRebuild)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace caseledger

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--cases=", 0) == 0)
      caseledger::g_cases = std::stoull(a.substr(8));
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// What sealing personal data costs (issue 20), each figure beside its
// baseline measured in the same run:
//   - a rebuild of the read models over a sealed store, and over its
//     plaintext twin (the same events, opened, appended in the same order);
//   - a command on an existing case (durable: fsync on) and the sealing
//     inside it; a report of a new case and the synced creation of its
//     data keys inside it;
//   - a case's history as the route reads it: parsed, and parsed and
//     opened.
//   sealing_bench [--cases=N] [benchmark flags]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "caseledger/service/seed.h"

namespace {

using namespace caseledger;
using Json = nlohmann::json;
uint64_t g_cases = 5000;

void Check(const Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "sealing_bench: %s\n", s.ToString().c_str());
  std::abort();
}

struct Fixture {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("caseledger-sealing-bench-" + std::to_string(getpid())))
                         .string();
  std::shared_ptr<const domain::EventCatalog> catalog =
      *domain::EventCatalog::Load();
  SettableClock clock;
  std::unique_ptr<EventStore> sealed, plain;
  service::DataKeys keys;
  std::unique_ptr<service::CaseService> service;
  uint64_t events = 0;

  Fixture() {
    std::filesystem::create_directories(path);
    service::KeyConfig kc;
    kc.dev_kek = true;
    auto opened = service::OpenDataKeys(path, kc, catalog, nullptr);
    Check(opened.status());
    keys = std::move(*opened);
    Options o;
    o.clock = clock.Function();
    Check(EventStore::Open(o, path + "/sealed", &sealed));
    Options p;
    p.sync = false;
    Check(EventStore::Open(p, path + "/plain", &plain));
    service = std::make_unique<service::CaseService>(
        *sealed, catalog, domain::DomainConfig{}, *keys.sealer);
    // Seeded without fsync, then durable again for the commands.
    service::SeedOptions so;
    so.cases = g_cases;
    so.clock = &clock;
    {
      Options fast = o;
      fast.sync = false;
      sealed.reset();
      Check(EventStore::Open(fast, path + "/sealed", &sealed));
      Check(service::SeedCases(*sealed, catalog, domain::DomainConfig{},
                               *keys.sealer, so)
                .status());
      sealed.reset();
      Check(EventStore::Open(o, path + "/sealed", &sealed));
      service = std::make_unique<service::CaseService>(
          *sealed, catalog, domain::DomainConfig{}, *keys.sealer);
    }
    clock.Reset();
    // The twin: every event opened, appended to the plain store as it was.
    GlobalPosition after(0);
    for (;;) {
      auto page = sealed->ReadAll(after, 4096);
      Check(page.status());
      if (page->empty()) break;
      for (const RecordedEvent& e : *page) {
        after = e.position;
        ProposedEvent pe;
        pe.event_id = e.event_id;
        pe.type = e.type;
        pe.schema_version = e.schema_version;
        pe.occurred_at = e.occurred_at;
        pe.actor = e.actor;
        pe.correlation_id = e.correlation_id;
        pe.causation_id = e.causation_id;
        Json payload = service::ParseStoredJson(e.payload);
        if (service::IsCaseStream(e.stream_id)) {
          Check(keys.sealer->UnsealEvent(e.stream_id, e.event_id, &payload));
        }
        pe.payload = payload.dump();
        Check(
            plain->Append(e.stream_id, ExpectedVersion::Any(), {pe}).status());
        ++events;
      }
    }
  }
  ~Fixture() {
    service.reset();
    sealed.reset();
    plain.reset();
    keys = {};
    std::filesystem::remove_all(path);
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

// A rebuild from nothing of the read models over `store`.
void Rebuild(benchmark::State& state, const EventStore& store) {
  Fixture& f = F();
  int run = 0;
  for (auto _ : state) {
    const std::string dir = f.path + "/models-" + std::to_string(run++);
    auto models = projections::ReadModels::Open(
        dir, store, f.catalog, nullptr, "bench-pseudonym-key-0123456789");
    Check(models.status());
    Check((*models)->CatchUp());
    state.PauseTiming();
    models->reset();
    // What the rebuild wrote: the read models' files once closed.
    uint64_t bytes = 0;
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file()) bytes += entry.file_size();
    }
    state.counters["model_MiB"] = static_cast<double>(bytes) / (1 << 20);
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.events));
}

void BM_RebuildSealed(benchmark::State& state) { Rebuild(state, *F().sealed); }
void BM_RebuildPlaintextTwin(benchmark::State& state) {
  Rebuild(state, *F().plain);
}

const domain::Actor kDsl{"user:dsl-1", domain::Role::kDsl};

// record-learning on an existing case: two sealed texts, durable.
void BM_CommandOnACase(benchmark::State& state) {
  Fixture& f = F();
  static std::atomic<int> n{0};
  for (auto _ : state) {
    const Json body = {
        {"learning_id", "bench-" + std::to_string(n++)},
        {"what_went_well", "The report reached the lead the same day."},
        {"what_must_change", "Facilitators need a script for online sessions."},
        {"share_in", {"monthly_learning_meeting"}}};
    Check(f.service->Execute("case-000001", "record-learning", body, kDsl)
              .status());
  }
}

// The sealing inside that command, alone.
void BM_SealLearning(benchmark::State& state) {
  Fixture& f = F();
  const Json body = {
      {"learning_id", "bench"},
      {"what_went_well", "The report reached the lead the same day."},
      {"what_must_change", "Facilitators need a script for online sessions."},
      {"share_in", {"monthly_learning_meeting"}}};
  for (auto _ : state) {
    Json payload = body;
    Check(f.keys.sealer->Seal("case-000001", EventId::NewV7(),
                              "LearningRecorded", 1, &payload));
    benchmark::DoNotOptimize(payload);
  }
}

Json Report() {
  Json r = {{"kind", "concern"},
            {"occurred_at", "2026-01-05T09:00:00Z"},
            {"reported_at", "2026-01-05T10:00:00Z"},
            {"setting", "online_session"},
            {"people_involved",
             {{{"person_ref", "person-1"},
               {"roles", {"person_affected"}},
               {"name", "Person A"},
               {"contact", {{"email", "person.a@example.org"}}}},
              {{"person_ref", "person-2"},
               {"roles", {"person_alleged_to_cause_harm"}},
               {"name", "Person B"}}}},
            {"facts", "Person B sent Person A unkind messages."},
            {"persons_own_words", "I want it to stop."},
            {"categories", {"online_misuse"}},
            {"sac_locations_of_risk", {"in_the_community"}},
            {"sac_sources_of_risk", {"other_known_to_individual"}},
            {"immediate_risk", false},
            {"emergency_services_called", false},
            {"person_affected_knows", true},
            {"under_18_involved", false}};
  return r;
}

// A report of a new case: three data keys made (one synced write), five
// fields sealed, the event appended (one fsync).
void BM_ReportANewCase(benchmark::State& state) {
  Fixture& f = F();
  static std::atomic<int> n{0};
  const Json report = Report();
  for (auto _ : state) {
    Check(f.service
              ->Execute("bench-new-" + std::to_string(n++), "report", report,
                        kDsl)
              .status());
  }
}

// The data keys of a new case alone: made and written, synced.
void BM_NewCaseKeys(benchmark::State& state) {
  Fixture& f = F();
  static std::atomic<int> n{0};
  for (auto _ : state) {
    Check(
        f.keys.store
            ->GetOrCreate("bench-keys-" + std::to_string(n++),
                          {keys::Scope::Case(), keys::Scope::Person("person-1"),
                           keys::Scope::Person("person-2")})
            .status());
  }
}

// A case's history as the route reads it: each payload parsed; and parsed
// and opened.
void History(benchmark::State& state, bool open) {
  Fixture& f = F();
  size_t n = 0;
  for (auto _ : state) {
    Check(ForEachInStream(*f.sealed, "case-000002", StreamVersion(1), 0,
                          [&](const RecordedEvent& e) {
                            Json p = service::ParseStoredJson(e.payload);
                            if (open) {
                              RETURN_IF_ERROR(f.keys.sealer->UnsealEvent(
                                  e.stream_id, e.event_id, &p));
                            }
                            n += p.size();
                            return Status::OK();
                          }));
  }
  benchmark::DoNotOptimize(n);
}
void BM_HistoryParsed(benchmark::State& state) { History(state, false); }
void BM_HistoryParsedAndOpened(benchmark::State& state) {
  History(state, true);
}

BENCHMARK(BM_RebuildPlaintextTwin)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK(BM_RebuildSealed)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_CommandOnACase)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_SealLearning)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_ReportANewCase)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_NewCaseKeys)->Unit(benchmark::kMicrosecond)->MinTime(2.0);
BENCHMARK(BM_HistoryParsed)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_HistoryParsedAndOpened)
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(1.0);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--cases=", 0) == 0) g_cases = std::stoull(a.substr(8));
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

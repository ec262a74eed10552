// Replay of a 1,000-event case (issue 4's target: under 5 ms to any
// version), beside its baseline in the same run: reading the same 1,000
// events from the store and parsing their payloads with nlohmann/json and
// nothing else. The difference is the domain's own work (upcast, evolve).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "caseledger/service/replay.h"

namespace {

using namespace caseledger;
using Json = nlohmann::json;

struct Fixture {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("caseledger-replay-bench-" + std::to_string(getpid())))
                         .string();
  std::unique_ptr<EventStore> store;
  std::shared_ptr<const domain::EventCatalog> catalog;
  service::DataKeys keys;
  std::unique_ptr<service::CaseService> service;

  Fixture() {
    Options o;
    o.sync = false;
    if (!EventStore::Open(o, path, &store).ok()) std::abort();
    catalog = *domain::EventCatalog::Load();
    service::KeyConfig kc;
    kc.dev_kek = true;  // sealed as the server seals
    auto opened = service::OpenDataKeys(path, kc, catalog, nullptr);
    if (!opened.ok()) std::abort();
    keys = std::move(*opened);
    service = std::make_unique<service::CaseService>(
        *store, catalog, domain::DomainConfig{}, *keys.sealer);
    const domain::Actor dsl{"user:dsl-1", domain::Role::kDsl};
    Json report = {
        {"kind", "concern"},
        {"occurred_at", "2026-01-05T09:00:00Z"},
        {"reported_at", "2026-01-05T10:00:00Z"},
        {"setting", "online_session"},
        {"people_involved",
         {{{"person_ref", "person-1"}, {"roles", {"person_affected"}}}}},
        {"facts", "Person A received unkind messages."},
        {"categories", {"online_misuse"}},
        {"sac_locations_of_risk", {"in_the_community"}},
        {"sac_sources_of_risk", {"other_known_to_individual"}},
        {"immediate_risk", false},
        {"emergency_services_called", false},
        {"person_affected_knows", true},
        {"under_18_involved", false}};
    Check(service->Execute("the-case", "report", report, dsl).status());
    Check(service
              ->Execute("the-case", "assign-lead",
                        {{"lead_actor_id", dsl.id},
                         {"role", "dsl"},
                         {"reason", "initial_assignment"}},
                        dsl)
              .status());
    // 998 more events, written straight to the store (deciding each through
    // the service would re-read a growing case every time).
    std::vector<ProposedEvent> batch;
    for (int i = 0; i < 998; ++i) {
      ProposedEvent e;
      e.type = "LearningRecorded";
      e.actor = Actor{dsl.id, "dsl"};
      e.payload =
          Json{{"learning_id", "learning-" + std::to_string(i)},
               {"what_went_well", "The report reached the lead the same day."},
               {"what_must_change",
                "Facilitators need a script for online sessions."},
               {"share_in", {"monthly_learning_meeting"}}}
              .dump();
      batch.push_back(std::move(e));
    }
    Check(store
              ->Append("the-case", ExpectedVersion::Exact(StreamVersion(2)),
                       std::move(batch))
              .status());
  }
  ~Fixture() {
    service.reset();
    store.reset();
    std::filesystem::remove_all(path);
  }
  static void Check(const Status& s) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::abort();
    }
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void BM_ReadAndParse1000(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    auto events = f.store->ReadStream("the-case", StreamVersion(1),
                                      Direction::kForward, 1000);
    size_t n = 0;
    for (const auto& e : *events) {
      Json p = Json::parse(e.payload);
      n += p.size();
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_ReplayToVersion1000(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    auto s = f.service->Load("the-case", 1000);
    if (!s.ok() || s->version != 1000) state.SkipWithError("replay failed");
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void BM_ReplayStateJsonAtVersion500(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    auto s = service::ReplayState(*f.store, *f.service, "the-case",
                                  {500, std::nullopt});
    if (!s.ok()) state.SkipWithError("replay failed");
    benchmark::DoNotOptimize(s);
  }
}

BENCHMARK(BM_ReadAndParse1000)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_ReplayToVersion1000)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_ReplayStateJsonAtVersion500)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();

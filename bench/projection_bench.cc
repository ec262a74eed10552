// Rebuilding the read models over a seeded store, beside the JSON parse
// ceiling measured in the same run (issue 4): reading the same events from
// the log and parsing each payload with nlohmann/json and nothing else.
//   projection_bench [--cases=N] [benchmark flags]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "caseledger/projections/read_models.h"
#include "caseledger/service/seed.h"

namespace {

using namespace caseledger;
uint64_t g_cases = 20000;

struct Fixture {
  std::string path =
      (std::filesystem::temp_directory_path() /
       ("caseledger-projection-bench-" + std::to_string(getpid())))
          .string();
  std::unique_ptr<EventStore> store;
  std::shared_ptr<const domain::EventCatalog> catalog;
  std::unique_ptr<projections::ReadModels> models;
  uint64_t events = 0;
  std::atomic<int64_t> clock{0};  // the seed's simulated clock

  Fixture() {
    service::SeedOptions so;
    so.cases = g_cases;
    clock.store(so.start.value());
    so.clock_micros = &clock;
    std::filesystem::create_directories(path);
    Options o;
    o.sync = false;
    o.clock = [this] { return Timestamp(clock.load()); };
    if (!EventStore::Open(o, path + "/log", &store).ok()) std::abort();
    catalog = *domain::EventCatalog::Load();
    auto r = service::SeedCases(*store, catalog, domain::DomainConfig{}, so);
    if (!r.ok()) std::abort();
    events = r->events;
    auto m = projections::ReadModels::Open(path + "/projections", *store,
                                           catalog, nullptr,
                                           "bench-pseudonym-key-0123456789");
    if (!m.ok()) std::abort();
    models = std::move(*m);
  }
  ~Fixture() {
    models.reset();
    store.reset();
    std::filesystem::remove_all(path);
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void BM_ParseOnlyCeiling(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    uint64_t after = 0, n = 0;
    for (;;) {
      auto page = f.store->ReadAll(GlobalPosition(after), 1000);
      if (!page.ok() || page->empty()) break;
      for (const auto& e : *page) {
        auto j = nlohmann::json::parse(e.payload);
        n += j.size();
      }
      after = page->back().position.value();
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.events));
  state.counters["events"] = static_cast<double>(f.events);
}

void BM_RebuildReadModels(benchmark::State& state) {
  Fixture& f = F();
  for (auto _ : state) {
    if (!f.models->Rebuild().ok()) state.SkipWithError("rebuild failed");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(f.events));
}

BENCHMARK(BM_ParseOnlyCeiling)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_RebuildReadModels)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--cases=", 0) == 0) {
      g_cases = std::stoull(a.substr(8));
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

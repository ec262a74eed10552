// Validation of hostile request bodies against parsing the same bodies: the
// ratio stays flat as the body grows when validation is linear in the body
// (bench/RESULTS.md). Before the two-pass check, 8,000 duplicate items took
// 32 s to refuse.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "caseledger/domain/catalog.h"

namespace {

using Json = nlohmann::json;

const caseledger::domain::EventCatalog& Catalog() {
  static auto catalog = *caseledger::domain::EventCatalog::Load();
  return *catalog;
}

Json Example() {
  std::ifstream in(std::filesystem::path(CASELEDGER_SOURCE_DIR) / "schemas" /
                   "examples" / "ConcernReported" / "valid-1.json");
  return Json::parse(in);
}

// A report whose categories repeat one valid code `n` times.
std::string HostileBody(int64_t n) {
  Json body = Example();
  Json one = body["categories"][0];
  body["categories"] = Json::array();
  for (int64_t i = 0; i < n; ++i) body["categories"].push_back(one);
  return body.dump();
}

// Baseline: parsing the body, which any request pays.
void BM_ParseHostileBody(benchmark::State& state) {
  const std::string text = HostileBody(state.range(0));
  for (auto _ : state) {
    Json j = Json::parse(text);
    benchmark::DoNotOptimize(j);
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(text.size()));
  state.SetComplexityN(state.range(0));
}

// Refusing it: the whole Validate call, both passes.
void BM_RejectHostileBody(benchmark::State& state) {
  const Json body = Json::parse(HostileBody(state.range(0)));
  for (auto _ : state) {
    auto s = Catalog().Validate("ConcernReported", 1, body);
    if (s.ok()) state.SkipWithError("accepted");
    benchmark::DoNotOptimize(s);
  }
  state.SetComplexityN(state.range(0));
}

// A valid report, for scale.
void BM_ValidateValidReport(benchmark::State& state) {
  Json body = Example();
  for (auto _ : state) {
    auto s = Catalog().Validate("ConcernReported", 1, body);
    if (!s.ok()) state.SkipWithError("refused");
    benchmark::DoNotOptimize(s);
  }
}

// One access record, as a case list page writes one per case listed.
void BM_ValidateCaseRead(benchmark::State& state) {
  const Json record = {
      {"case_id", "case-000123"}, {"read", "list"}, {"version", 17}};
  for (auto _ : state) {
    auto s = Catalog().Validate("CaseRead", 1, record);
    if (!s.ok()) state.SkipWithError("refused");
    benchmark::DoNotOptimize(s);
  }
}

BENCHMARK(BM_ParseHostileBody)
    ->RangeMultiplier(4)
    ->Range(1000, 64000)
    ->Complexity(benchmark::oN);
BENCHMARK(BM_RejectHostileBody)
    ->RangeMultiplier(4)
    ->Range(1000, 64000)
    ->Complexity(benchmark::oN);
BENCHMARK(BM_ValidateValidReport);
BENCHMARK(BM_ValidateCaseRead);

}  // namespace

BENCHMARK_MAIN();

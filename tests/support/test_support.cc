#include "tests/support/test_support.h"

#include <filesystem>
#include <random>

namespace caseledger::testing {

TempDir::TempDir() {
  std::random_device rd;
  std::filesystem::path base = std::filesystem::temp_directory_path();
  for (;;) {
    std::filesystem::path p =
        base /
        ("caseledger-test-" + std::to_string(rd()) + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p.string();
      return;
    }
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ProposedEvent MakeEvent(std::string type, std::string payload, EventId id) {
  ProposedEvent e;
  e.event_id = id;
  e.type = std::move(type);
  e.schema_version = 1;
  e.occurred_at = Timestamp(1767225600000000);  // 2026-01-01T00:00:00Z
  e.actor = Actor{"actor-1", "dsl"};
  e.correlation_id = "corr-1";
  e.payload = std::move(payload);
  return e;
}

std::string PayloadOfSize(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s = R"({"facts":")";
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz ";
  while (s.size() + 2 < bytes) s.push_back(kChars[rng() % 27]);
  s += "\"}";
  return s;
}

nlohmann::json ReportBody(bool immediate_risk) {
  nlohmann::json r = {
      {"kind", "concern"},
      {"occurred_at", "2026-03-01T09:00:00Z"},
      {"reported_at", "2026-03-01T10:00:00Z"},
      {"setting", "travel"},
      {"people_involved",
       {{{"person_ref", "person-1"}, {"roles", {"person_affected"}}}}},
      {"facts", "Person A was followed on the way home from a session."},
      {"categories", {"harassment"}},
      {"sac_locations_of_risk", {"in_the_community"}},
      {"sac_sources_of_risk", {"other_unknown_to_individual"}},
      {"immediate_risk", immediate_risk},
      {"emergency_services_called", immediate_risk},
      {"person_affected_knows", true},
      {"under_18_involved", false}};
  if (immediate_risk) r["actions_taken"] = "Stayed with Person A; called 999.";
  return r;
}

std::unique_ptr<EventStore> OpenStore(const std::string& path,
                                      Options options) {
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, path, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

}  // namespace caseledger::testing

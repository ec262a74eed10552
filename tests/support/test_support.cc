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

std::unique_ptr<EventStore> OpenStore(const std::string& path,
                                      Options options) {
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, path, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

}  // namespace caseledger::testing

// Test helpers shared by the suites.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "caseledger/event_store.h"

#define ASSERT_OK(expr)                                                \
  do {                                                                 \
    const auto& cl_s_ = (expr);                                        \
    ASSERT_TRUE(cl_s_.ok()) << ::caseledger::testing::Describe(cl_s_); \
  } while (0)
#define EXPECT_OK(expr)                                                \
  do {                                                                 \
    const auto& cl_s_ = (expr);                                        \
    EXPECT_TRUE(cl_s_.ok()) << ::caseledger::testing::Describe(cl_s_); \
  } while (0)

namespace caseledger::testing {

inline std::string Describe(const Status& s) { return s.ToString(); }
template <typename T>
std::string Describe(const StatusOr<T>& s) {
  return s.status().ToString();
}

// A fresh directory under $TMPDIR, removed with everything in it when the
// object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A proposed event with a fixed actor and a small JSON payload.
ProposedEvent MakeEvent(std::string type = "TestEvent",
                        std::string payload = R"({"n":1})",
                        EventId id = EventId());

// A payload of about `bytes` bytes of JSON.
std::string PayloadOfSize(size_t bytes, uint64_t seed);

// A valid "report" command body (a ConcernReported payload less the fields
// the server sets): one person affected, harassment while travelling.
nlohmann::json ReportBody(bool immediate_risk = false);

// Opens (creating) a store at `path`, failing the test on error.
std::unique_ptr<EventStore> OpenStore(const std::string& path,
                                      Options options = Options());

}  // namespace caseledger::testing

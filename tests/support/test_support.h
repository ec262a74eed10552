// Test helpers shared by the suites.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/keys/keys.h"
#include "caseledger/keys/sealer.h"

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

// A Status or StatusOr that is OK: EXPECT_THAT(store->Append(...), IsOk()).
MATCHER(IsOk, "is OK") {
  if (arg.ok()) return true;
  *result_listener << Describe(arg);
  return false;
}

// Polls `done` every 10 ms until it holds or `timeout` passes (generous:
// sanitizer builds are slow); whether it held. For waiting on something
// that will happen; a test that shows something does not happen waits its
// time out instead.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A helper program run as a child process, its standard output piped back
// (the crash tests' appender and projection worker). Killed if still
// running when destroyed.
class ChildProcess {
 public:
  // Starts `program` with `args`; started() says whether it did.
  ChildProcess(const std::string& program,
               const std::vector<std::string>& args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The path of a helper program built beside the running test binary.
  static std::string Beside(const std::string& name);

  bool started() const { return pid_ > 0; }
  // Reads what the child writes until `text` has appeared in its output or
  // `timeout` passes (or it closes its output); whether `text` appeared.
  bool ReadUntil(const std::string& text,
                 std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Reads what the child writes for `duration` (so the pipe never fills).
  void ReadFor(std::chrono::milliseconds duration);
  // SIGKILL, then reads what is left in the pipe; the wait status.
  int Kill();
  // Waits for the child to exit, reading all it writes; the wait status.
  int Wait();
  // Everything read so far.
  const std::string& output() const { return output_; }

 private:
  // Reads once, waiting up to `wait`; false at the end of the output.
  bool ReadSome(std::chrono::microseconds wait);
  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string output_;
};

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

// A reviewer's approval of learning `learning_id` for sharing, every check
// ticked (screen-learning's body).
nlohmann::json ApprovedScreening(const std::string& learning_id);

// The clock of every store OpenStore opens without a clock of its own: the
// system clock unless a test sets it (tests/support/seeding.h sets it while
// it seeds, then resets it).
SettableClock& StoreClock();

// Opens (creating) a store at `path`, failing the test on error. Without
// options.clock, the store reads StoreClock().
std::unique_ptr<EventStore> OpenStore(const std::string& path,
                                      Options options = Options());

// Every record of the log as stored (EncodeStoredRecord), in order.
std::vector<std::string> StoredRecords(const EventStore& store);

// A key store in its own temporary directory (a fresh KEK, written
// without fsync) and a sealer over `catalog`: what a test's CaseService
// seals with and its readers open with.
class TestKeys {
 public:
  explicit TestKeys(std::shared_ptr<const domain::EventCatalog> catalog);
  TestKeys(const TestKeys&) = delete;
  TestKeys& operator=(const TestKeys&) = delete;

  keys::KeyStore& store() { return *store_; }
  const keys::Sealer& sealer() const { return *sealer_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::unique_ptr<keys::KeyStore> store_;
  std::unique_ptr<keys::Sealer> sealer_;
};

// A store in a temporary directory (dir_/log), written without fsync (these
// tests cut no power), on clock_ (the system clock until a test sets it),
// the event catalog, and keys to seal with. Fixtures that need more derive
// from it and call StoreTest::SetUp() first.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;

  SettableClock clock_;  // outlives the store
  TempDir dir_;
  std::unique_ptr<EventStore> store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::unique_ptr<TestKeys> keys_;
};

}  // namespace caseledger::testing

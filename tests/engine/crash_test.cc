// Crash safety: a child process appends with sync on and reports every
// acknowledged append over a pipe; the parent kills it with SIGKILL at a
// random moment, reopens the store, and checks that every acknowledged event
// is there at its reported position, the chains verify, and positions have no
// gap. Repeated, so that recovery itself is recovered from.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "caseledger/event_store.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

struct Ack {
  std::string event_id;
  uint64_t position;
  std::string stream;
  uint64_t version;
};

// Runs the child for `run_ms`, kills it, and returns every line it wrote.
std::vector<Ack> RunAndKill(const std::string& dir, unsigned seed, int run_ms) {
  testing::ChildProcess child(testing::ChildProcess::Beside("crash_appender"),
                              {dir, std::to_string(seed)});
  EXPECT_TRUE(child.started());
  // Wait (up to 30 s, for slow sanitizer builds) until the child has
  // acknowledged its first append, then let it run `run_ms` more, reading
  // all the while so the pipe never fills and blocks it.
  child.ReadUntil("\n", std::chrono::seconds(30));
  child.ReadFor(std::chrono::milliseconds(run_ms));
  const int status = child.Kill();
  EXPECT_TRUE(WIFSIGNALED(status))
      << "the child exited on its own: status " << status;
  // Whatever it acknowledged before dying was read from the pipe.
  const std::string& out = child.output();

  std::vector<Ack> acks;
  std::istringstream in(out);
  Ack a;
  while (in >> a.event_id >> a.position >> a.stream >> a.version) {
    acks.push_back(a);
  }
  return acks;
}

TEST(CrashTest, AcknowledgedAppendsSurviveSigkill) {
  testing::TempDir dir;
  std::mt19937 rng(20261122);
  std::vector<Ack> all;
  constexpr int kRounds = 6;
  for (int round = 0; round < kRounds; ++round) {
    int run_ms = 100 + static_cast<int>(rng() % 400);
    std::vector<Ack> acks =
        RunAndKill(dir.path(), static_cast<unsigned>(round), run_ms);
    EXPECT_FALSE(acks.empty()) << "round " << round << " acknowledged nothing";
    all.insert(all.end(), acks.begin(), acks.end());

    auto store = testing::OpenStore(dir.path());
    ASSERT_NE(store, nullptr);
    auto report = store->Verify(std::nullopt);
    ASSERT_OK(report);
    ASSERT_TRUE(report->ok)
        << "round " << round << ": " << report->first_broken->reason << " at "
        << report->first_broken->position.value();
    const uint64_t head = store->Head().position.value();
    EXPECT_EQ(report->events_checked, head);  // 1..head, no gap

    for (const Ack& ack : all) {
      auto id = EventId::Parse(ack.event_id);
      ASSERT_OK(id);
      auto e = store->ReadEvent(*id);
      ASSERT_OK(e);
      EXPECT_EQ(e->position.value(), ack.position);
      EXPECT_EQ(e->stream_id, ack.stream);
      EXPECT_EQ(e->version.value(), ack.version);
    }
    auto log = store->ReadAll(GlobalPosition(0), head + 1);
    ASSERT_OK(log);
    for (size_t i = 0; i < log->size(); ++i) {
      ASSERT_EQ((*log)[i].position.value(), i + 1);
    }
  }
  EXPECT_GT(all.size(), 50u);
}

}  // namespace
}  // namespace caseledger

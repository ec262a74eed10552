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

std::string ChildPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() /
          "crash_appender")
      .string();
}

// Runs the child for `run_ms`, kills it, and returns every line it wrote.
std::vector<Ack> RunAndKill(const std::string& dir, unsigned seed, int run_ms) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::string child = ChildPath();
    std::string s = std::to_string(seed);
    execl(child.c_str(), child.c_str(), dir.c_str(), s.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[65536];
  auto read_some = [&](int wait_us) -> bool {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fds[0], &set);
    timeval tv{0, wait_us};
    if (select(fds[0] + 1, &set, nullptr, nullptr, &tv) > 0) {
      ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) return false;
      out.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  // Wait (up to 30 s, for slow sanitizer builds) until the child has
  // acknowledged its first append, then let it run `run_ms` more, reading
  // all the while so the pipe never fills and blocks it.
  auto start = std::chrono::steady_clock::now();
  while (out.find('\n') == std::string::npos &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    if (!read_some(5000)) break;
  }
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!read_some(5000)) break;
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status))
      << "the child exited on its own: status " << status;
  // Whatever it acknowledged before dying is still in the pipe.
  for (;;) {
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);

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

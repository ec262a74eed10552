// Storage failures fail closed: when a write to the write-ahead log fails
// (an I/O error, a full disk), the caller is told, nothing partial is
// written, and the store refuses every further append until it recovers: by
// itself once a full disk has room again, on Resume() or a reopen after an
// I/O error. Reads go on throughout.
#include <rocksdb/env.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "caseledger/event_store.h"
#include "engine/src/event_store_impl.h"
#include "tests/support/faulty_disk_env.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;

TEST(FaultInjectionTest, FailedWriteIsReportedAndTheStoreFailsClosed) {
  testing::TempDir dir;
  testing::FaultyDiskEnv env;
  std::unique_ptr<EventStore> store;
  ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
  ASSERT_OK(store->Append("case-1", ExpectedVersion::NoStream(),
                          {MakeEvent("A"), MakeEvent("B")}));
  const LogHead before = store->Head();

  env.wal_io_error = true;
  auto failed =
      store->Append("case-1", ExpectedVersion::Exact(StreamVersion(2)),
                    {MakeEvent("C"), MakeEvent("D"), MakeEvent("E")});
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(failed.status().IsIOError()) << failed.status().ToString();
  EXPECT_TRUE(store->Health().IsIOError());
  // Nothing of the failed append is visible.
  EXPECT_EQ(store->Head().position, before.position);
  EXPECT_EQ(store->committed_position().value(), 2u);
  auto events = store->ReadAll(GlobalPosition(0), 100);
  ASSERT_OK(events);
  EXPECT_EQ(events->size(), 2u);

  // Fail closed: even with the disk healthy again, an I/O error (which may
  // have lost written pages) is not resumed from by itself.
  env.wal_io_error = false;
  auto after = store->Append("case-2", ExpectedVersion::Any(), {MakeEvent()});
  EXPECT_TRUE(after.status().IsIOError()) << after.status().ToString();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(store->Health().IsIOError());
  (void)store->Close();  // may report the storage error again
  store.reset();

  // Reopened, the store holds all of an append or none of it, and verifies.
  store = testing::OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  uint64_t head = store->Head().position.value();
  EXPECT_TRUE(head == 2 || head == 5) << head;
  auto report = store->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok) << report->first_broken->reason;
  EXPECT_OK(store->Health());
  ASSERT_OK(store->Append("case-2", ExpectedVersion::Any(), {MakeEvent()}));
  EXPECT_EQ(store->Head().position.value(), head + 1);
}

using testing::WaitFor;

// The disk fills up under a running store: appends are refused with
// kNoSpace and write nothing, reads go on, the store stays up (RocksDB's
// own log is not a file on the full disk), and once there is room again it
// resumes by itself, without a reopen, losing nothing acknowledged.
TEST(FaultInjectionTest, AFullDiskRefusesAppendsUntilSpaceIsFreed) {
  testing::TempDir dir;
  testing::FaultyDiskEnv env;
  std::unique_ptr<EventStore> store;
  ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK(store->Append("case-" + std::to_string(i % 3),
                            ExpectedVersion::Any(), {MakeEvent()}));
  }
  EXPECT_OK(store->Health());

  env.full = true;
  for (int i = 0; i < 5; ++i) {
    auto refused =
        store->Append("case-9", ExpectedVersion::Any(), {MakeEvent()});
    ASSERT_FALSE(refused.ok());
    EXPECT_TRUE(refused.status().IsNoSpace()) << refused.status().ToString();
  }
  EXPECT_TRUE(store->Health().IsNoSpace()) << store->Health().ToString();
  EXPECT_EQ(store->committed_position().value(), 20u);
  // Reads go on.
  auto all = store->ReadAll(GlobalPosition(0), 100);
  ASSERT_OK(all);
  EXPECT_EQ(all->size(), 20u);
  auto stream =
      store->ReadStream("case-1", StreamVersion(1), Direction::kForward, 100);
  ASSERT_OK(stream);
  EXPECT_EQ(stream->size(), 7u);
  // Still full: an operator's resume says so, and changes nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_TRUE(store->Resume().IsNoSpace());
  EXPECT_TRUE(store->Health().IsNoSpace());
  EXPECT_GE(store->stats().write_failures, 1u);

  // Space is freed: the store resumes by itself, with no append to prompt
  // it.
  env.full = false;
  EXPECT_TRUE(WaitFor([&] { return store->Health().ok(); }))
      << store->Health().ToString();
  EXPECT_EQ(store->stats().recoveries, 1u);
  auto appended =
      store->Append("case-9", ExpectedVersion::Any(), {MakeEvent()});
  ASSERT_OK(appended);
  EXPECT_EQ(appended->last_position.value(), 21u);
  auto report = store->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok) << report->first_broken->reason;
  ASSERT_OK(store->Close());
  store.reset();

  // Reopened: everything acknowledged, nothing refused.
  store = testing::OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Head().position.value(), 21u);
  report = store->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
  // The data directory holds no RocksDB LOG file to write to a full disk.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/LOG"));
}

// Opened on a disk that is already full, the store serves reads from a
// read-only open (a writable one must write a new MANIFEST and WAL),
// refuses appends with kNoSpace, and once there is room opens writable by
// itself and takes appends, without a restart.
TEST(FaultInjectionTest, AStoreOpenedOnAFullDiskServesReadsAndResumes) {
  testing::TempDir dir;
  testing::FaultyDiskEnv env;
  {
    std::unique_ptr<EventStore> store;
    ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
    for (int i = 0; i < 10; ++i) {
      ASSERT_OK(store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()}));
    }
  }
  env.full = true;
  std::unique_ptr<EventStore> store;
  ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
  EXPECT_TRUE(store->Health().IsNoSpace()) << store->Health().ToString();
  EXPECT_EQ(store->committed_position().value(), 10u);
  auto events =
      store->ReadStream("case-1", StreamVersion(1), Direction::kForward, 100);
  ASSERT_OK(events);
  EXPECT_EQ(events->size(), 10u);
  auto refused = store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()});
  EXPECT_TRUE(refused.status().IsNoSpace()) << refused.status().ToString();
  // Readers go on while the store tries, and fails, to open writable.
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto r = store->ReadAll(GlobalPosition(0), 100);
      ASSERT_OK(r);
      ASSERT_GE(r->size(), 10u);
      ++reads;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(store->Health().IsNoSpace());
  env.full = false;
  EXPECT_TRUE(WaitFor([&] { return store->Health().ok(); }))
      << store->Health().ToString();
  auto appended = store->Append(
      "case-1", ExpectedVersion::Exact(StreamVersion(10)), {MakeEvent()});
  ASSERT_OK(appended);
  EXPECT_EQ(appended->last_position.value(), 11u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop.store(true);
  reader.join();
  EXPECT_GT(reads.load(), 0);
  auto report = store->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
  ASSERT_OK(store->Close());
  store.reset();
  store = testing::OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Head().position.value(), 11u);
}

// An I/O error on the write-ahead log (not a full disk) may have lost
// pages already written: RocksDB treats it as fatal, so an operator's
// Resume() says why it cannot, and the store stays closed to appends until
// it is reopened.
TEST(FaultInjectionTest, AnIOErrorIsNotResumedFromWithoutAReopen) {
  testing::TempDir dir;
  testing::FaultyDiskEnv env;
  std::unique_ptr<EventStore> store;
  ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
  ASSERT_OK(store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()}));
  env.wal_io_error = true;
  EXPECT_TRUE(store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()})
                  .status()
                  .IsIOError());
  env.wal_io_error = false;
  Status resumed = store->Resume();
  EXPECT_TRUE(resumed.IsIOError()) << resumed.ToString();
  EXPECT_TRUE(store->Health().IsIOError());
  EXPECT_TRUE(store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()})
                  .status()
                  .IsIOError());
  EXPECT_EQ(store->stats().recoveries, 0u);
  (void)store->Close();
  store.reset();
  store = testing::OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_OK(store->Resume());  // nothing to resume from: OK
  auto after = store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()});
  ASSERT_OK(after);
  EXPECT_EQ(after->last_position.value(), 2u);
}

}  // namespace
}  // namespace caseledger

// Restoring a backup: taken under write load, it restores exactly what was
// acknowledged before the backup was asked for (and nothing acknowledged
// after it returned); a backup that does not verify is refused and leaves
// nothing behind; a store is never restored over.
#include <rocksdb/db.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "caseledger/event_store.h"
#include "engine/src/key_format.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;

TEST(RestoreTest, ARestoreHoldsExactlyWhatWasAcknowledgedBeforeTheBackup) {
  testing::TempDir dir;
  auto store = testing::OpenStore(dir.path() + "/live");
  ASSERT_NE(store, nullptr);
  std::mutex mu;
  std::vector<EventId> before, after;  // acknowledged before / after
  std::atomic<int> phase{0};  // 0: before the call, 1: during, 2: after
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      while (!stop.load()) {
        auto r = store->Append("case-" + std::to_string(t),
                               ExpectedVersion::Any(), {MakeEvent()});
        ASSERT_OK(r);
        const int when = phase.load();  // read once the append is acked
        std::lock_guard<std::mutex> lk(mu);
        if (when == 0) before.push_back(r->event_ids[0]);
        if (when == 2) after.push_back(r->event_ids[0]);
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] { return store->committed_position().value() >= 300; }));
  const std::string backup = dir.path() + "/backup";
  phase.store(1);
  auto position = store->Backup(backup);
  phase.store(2);
  ASSERT_OK(position);
  while (true) {  // some appends acknowledged after the backup returned
    std::lock_guard<std::mutex> lk(mu);
    if (after.size() >= 50) break;
  }
  stop.store(true);
  for (auto& w : writers) w.join();

  // A restore never overwrites: not onto the live store.
  EXPECT_TRUE(
      RestoreBackup(backup, dir.path() + "/live").status().IsAlreadyExists());
  auto restored = RestoreBackup(backup, dir.path() + "/restored/");
  ASSERT_OK(restored);
  EXPECT_EQ(restored->value(), position->value());
  auto copy = testing::OpenStore(dir.path() + "/restored");
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->committed_position(), *position);
  for (const EventId& id : before) EXPECT_OK(copy->ReadEvent(id));
  for (const EventId& id : after) {
    EXPECT_TRUE(copy->ReadEvent(id).status().IsNotFound());
  }
  auto report = copy->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
  // (The last few acknowledged as the call began count as neither.)
  EXPECT_GT(before.size(), 200u);
}

// A backup whose bytes were changed (one stored event, rewritten behind the
// engine's back) is refused, naming where, and no store is left behind.
TEST(RestoreTest, ABrokenBackupIsRefusedAndNothingIsLeft) {
  testing::TempDir dir;
  {
    auto store = testing::OpenStore(dir.path() + "/live");
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 20; ++i) {
      ASSERT_OK(store->Append("case-1", ExpectedVersion::Any(), {MakeEvent()}));
    }
    ASSERT_OK(store->Backup(dir.path() + "/backup"));
  }
  {
    // Change one byte of the 7th event's record.
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(),
                                                dir.path() + "/backup", &names)
                    .ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names)
      descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir.path() + "/backup",
                                  descs, &handles, &raw)
                    .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::ColumnFamilyHandle* log = nullptr;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == internal::kLogCf) log = handles[i];
    }
    ASSERT_NE(log, nullptr);
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), log));
    it->SeekToFirst();
    for (int i = 0; i < 6; ++i) it->Next();
    ASSERT_TRUE(it->Valid());
    std::string key = it->key().ToString(), value = it->value().ToString();
    it.reset();
    value[value.size() / 2] ^= 0x01;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), log, key, value).ok());
    for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
    (void)db->Close();
  }
  auto restored =
      RestoreBackup(dir.path() + "/backup", dir.path() + "/restored");
  ASSERT_FALSE(restored.ok());
  EXPECT_TRUE(restored.status().IsCorruption()) << restored.status().ToString();
  EXPECT_NE(restored.status().message().find("position 7"), std::string::npos)
      << restored.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/restored"));
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().filename().string().find(".restoring"),
              std::string::npos)
        << e.path();
  }
  EXPECT_TRUE(RestoreBackup(dir.path() + "/nowhere", dir.path() + "/x")
                  .status()
                  .IsNotFound());
}

}  // namespace
}  // namespace caseledger

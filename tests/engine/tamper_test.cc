// Tamper evidence: change the stored bytes behind the engine's back, directly
// in RocksDB, and check that verify names the first broken link.
#include <rocksdb/db.h>

#include "caseledger/event_store.h"
#include "engine/src/key_format.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;
using testing::TempDir;

// Opens the store's RocksDB directly, with every column family.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const char* name :
         {rocksdb::kDefaultColumnFamilyName.c_str(), internal::kLogCf,
          internal::kStreamIndexCf, internal::kEventIdsCf, internal::kStreamsCf,
          internal::kMetaCf}) {
      descs.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), path, descs, &handles_, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db_.reset(raw);
  }
  ~RawDb() {
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }
  rocksdb::ColumnFamilyHandle* log() { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* stream_index() { return handles_[2]; }

  std::string Get(rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
    std::string v;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf, key, &v).ok());
    return v;
  }
  void Put(rocksdb::ColumnFamilyHandle* cf, const std::string& key,
           const std::string& value) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), cf, key, value).ok());
  }
  void Delete(rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), cf, key).ok());
  }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

class TamperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = testing::OpenStore(dir_.path());
    // Positions 1..9: cases a, b, c in turn, so each case's chain interleaves
    // with the others in the log.
    for (int i = 0; i < 9; ++i) {
      std::string id = std::string("case-") + static_cast<char>('a' + i % 3);
      ASSERT_OK(store->Append(
          id, ExpectedVersion::Any(),
          {MakeEvent("TestEvent", R"({"i":)" + std::to_string(i) + "}")}));
    }
  }

  // Verifies with a read-only open, as `caseledger verify` does.
  VerifyReport Verify(std::optional<std::string> stream = std::nullopt) {
    Options o;
    o.read_only = true;
    std::unique_ptr<EventStore> store;
    Status s = EventStore::Open(o, dir_.path(), &store);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return VerifyReport{};
    auto r = store->Verify(stream);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  TempDir dir_;
};

TEST_F(TamperTest, UntouchedStoreVerifies) {
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.events_checked, 9u);
  EXPECT_EQ(r.streams_checked, 3u);
  for (const char* c : {"case-a", "case-b", "case-c"}) {
    VerifyReport cr = Verify(c);
    EXPECT_TRUE(cr.ok) << c;
    EXPECT_EQ(cr.events_checked, 3u);
  }
}

TEST_F(TamperTest, FlippedByteAnywhereInAStoredEventIsNamed) {
  const std::string key = internal::LogKey(5);  // case-b, version 2
  std::string original;
  {
    RawDb raw(dir_.path());
    original = raw.Get(raw.log(), key);
  }
  ASSERT_GT(original.size(), 100u);
  // Every byte of the record: header, ids, payload, both hashes.
  for (size_t offset = 0; offset < original.size(); ++offset) {
    std::string changed = original;
    changed[offset] = static_cast<char>(changed[offset] ^ 0x01);
    {
      RawDb raw(dir_.path());
      raw.Put(raw.log(), key, changed);
    }
    VerifyReport r = Verify();
    ASSERT_FALSE(r.ok) << "byte " << offset << " changed unnoticed";
    EXPECT_EQ(r.first_broken->position.value(), 5u) << "byte " << offset;
    VerifyReport cr = Verify("case-b");
    ASSERT_FALSE(cr.ok) << "byte " << offset;
    EXPECT_EQ(cr.first_broken->position.value(), 5u)
        << "byte " << offset << ": " << cr.first_broken->reason;
  }
  {
    RawDb raw(dir_.path());
    raw.Put(raw.log(), key, original);
  }
  EXPECT_TRUE(Verify().ok);
  EXPECT_TRUE(Verify("case-a").ok);
}

TEST_F(TamperTest, DeletedEventIsNamedAsMissing) {
  {
    RawDb raw(dir_.path());
    raw.Delete(raw.log(), internal::LogKey(4));  // case-a, version 2
  }
  VerifyReport r = Verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.first_broken->position.value(), 4u);
  EXPECT_NE(r.first_broken->reason.find("missing"), std::string::npos)
      << r.first_broken->reason;
  VerifyReport cr = Verify("case-a");
  ASSERT_FALSE(cr.ok);
  EXPECT_EQ(cr.first_broken->position.value(), 4u);
  // case-b's event 5 chains from position 4 in the log.
  VerifyReport br = Verify("case-b");
  ASSERT_FALSE(br.ok);
  EXPECT_EQ(br.first_broken->position.value(), 4u);
}

TEST_F(TamperTest, DeletedLastEventIsRefusedOnOpenAndNamedByVerify) {
  {
    RawDb raw(dir_.path());
    raw.Delete(raw.log(), internal::LogKey(9));
  }
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(Options(), dir_.path(), &store);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  VerifyReport r = Verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.first_broken->position.value(), 9u);
}

TEST_F(TamperTest, RemovedIndexEntryIsNamed) {
  {
    RawDb raw(dir_.path());
    raw.Delete(raw.stream_index(), internal::StreamIndexKey("case-c", 2));
  }
  VerifyReport r = Verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.first_broken->position.value(), 6u);
  VerifyReport cr = Verify("case-c");
  ASSERT_FALSE(cr.ok);
  EXPECT_EQ(cr.first_broken->version.value(), 2u);
}

TEST_F(TamperTest, ReorderedEventsAreNamed) {
  {
    RawDb raw(dir_.path());
    std::string a = raw.Get(raw.log(), internal::LogKey(2));
    std::string b = raw.Get(raw.log(), internal::LogKey(3));
    raw.Put(raw.log(), internal::LogKey(2), b);
    raw.Put(raw.log(), internal::LogKey(3), a);
  }
  VerifyReport r = Verify();
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.first_broken->position.value(), 2u);
}

}  // namespace
}  // namespace caseledger

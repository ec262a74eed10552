// Storage failures fail closed: when a write to the write-ahead log fails
// (disk full, I/O error), the caller is told, nothing partial is written,
// and the store refuses every further append until it is reopened.
#include <rocksdb/env.h>

#include <atomic>

#include "caseledger/event_store.h"
#include "engine/src/event_store_impl.h"
#include "tests/support/test_support.h"

namespace caseledger {
namespace {

using testing::MakeEvent;

// Fails appends and syncs of WAL files (*.log) while `fail` is set.
class FailingWalEnv : public rocksdb::EnvWrapper {
 public:
  FailingWalEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "FailingWalEnv"; }

  std::atomic<bool> fail{false};

  rocksdb::Status NewWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    rocksdb::Status s = target()->NewWritableFile(fname, result, options);
    if (s.ok() && fname.size() > 4 &&
        fname.compare(fname.size() - 4, 4, ".log") == 0) {
      *result = std::make_unique<File>(std::move(*result), &fail);
    }
    return s;
  }
  rocksdb::Status ReopenWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    rocksdb::Status s = target()->ReopenWritableFile(fname, result, options);
    if (s.ok() && fname.size() > 4 &&
        fname.compare(fname.size() - 4, 4, ".log") == 0) {
      *result = std::make_unique<File>(std::move(*result), &fail);
    }
    return s;
  }

 private:
  class File : public rocksdb::WritableFileWrapper {
   public:
    File(std::unique_ptr<rocksdb::WritableFile> base, std::atomic<bool>* fail)
        : rocksdb::WritableFileWrapper(base.get()),
          base_(std::move(base)),
          fail_(fail) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      if (*fail_) return rocksdb::Status::NoSpace("injected: disk full");
      return rocksdb::WritableFileWrapper::Append(data);
    }
    rocksdb::Status Append(const rocksdb::Slice& data,
                           const rocksdb::DataVerificationInfo& info) override {
      if (*fail_) return rocksdb::Status::NoSpace("injected: disk full");
      return rocksdb::WritableFileWrapper::Append(data, info);
    }
    rocksdb::Status Sync() override {
      if (*fail_) return rocksdb::Status::IOError("injected: fsync failed");
      return rocksdb::WritableFileWrapper::Sync();
    }
    rocksdb::Status Fsync() override {
      if (*fail_) return rocksdb::Status::IOError("injected: fsync failed");
      return rocksdb::WritableFileWrapper::Fsync();
    }

   private:
    std::unique_ptr<rocksdb::WritableFile> base_;
    std::atomic<bool>* fail_;
  };
};

TEST(FaultInjectionTest, FailedWriteIsReportedAndTheStoreFailsClosed) {
  testing::TempDir dir;
  FailingWalEnv env;
  std::unique_ptr<EventStore> store;
  ASSERT_OK(internal::OpenWithEnv(Options(), dir.path(), &env, &store));
  ASSERT_OK(store->Append("case-1", ExpectedVersion::NoStream(),
                          {MakeEvent("A"), MakeEvent("B")}));
  const LogHead before = store->Head();

  env.fail = true;
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

  // Fail closed: even with the disk healthy again, no append until reopen.
  env.fail = false;
  auto after = store->Append("case-2", ExpectedVersion::Any(), {MakeEvent()});
  EXPECT_TRUE(after.status().IsIOError()) << after.status().ToString();
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

}  // namespace
}  // namespace caseledger

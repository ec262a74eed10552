// A RocksDB Env for tests whose storage fails on demand: a disk that fills
// up, or a write-ahead log that meets an I/O error.
#pragma once

#include <rocksdb/env.h>

#include <atomic>
#include <memory>
#include <string>

namespace caseledger::testing {

class FaultyDiskEnv : public rocksdb::EnvWrapper {
 public:
  FaultyDiskEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "FaultyDiskEnv"; }

  // Every write to every file fails with ENOSPC, as on a disk with no room
  // left (files can still be created; nothing more fits).
  std::atomic<bool> full{false};
  // Writes and syncs of write-ahead log files (*.log) fail with EIO.
  std::atomic<bool> wal_io_error{false};

  rocksdb::Status NewWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    rocksdb::Status s = target()->NewWritableFile(fname, result, options);
    if (s.ok()) Wrap(fname, result);
    return s;
  }
  rocksdb::Status ReopenWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    rocksdb::Status s = target()->ReopenWritableFile(fname, result, options);
    if (s.ok()) Wrap(fname, result);
    return s;
  }

 private:
  void Wrap(const std::string& fname,
            std::unique_ptr<rocksdb::WritableFile>* result) {
    const bool wal =
        fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
    *result = std::make_unique<File>(std::move(*result), this, wal);
  }

  class File : public rocksdb::WritableFileWrapper {
   public:
    File(std::unique_ptr<rocksdb::WritableFile> base, const FaultyDiskEnv* env,
         bool wal)
        : rocksdb::WritableFileWrapper(base.get()),
          base_(std::move(base)),
          env_(env),
          wal_(wal) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      rocksdb::Status s = Fault();
      return s.ok() ? rocksdb::WritableFileWrapper::Append(data) : s;
    }
    rocksdb::Status Append(const rocksdb::Slice& data,
                           const rocksdb::DataVerificationInfo& info) override {
      rocksdb::Status s = Fault();
      return s.ok() ? rocksdb::WritableFileWrapper::Append(data, info) : s;
    }
    rocksdb::Status PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset) override {
      rocksdb::Status s = Fault();
      return s.ok()
                 ? rocksdb::WritableFileWrapper::PositionedAppend(data, offset)
                 : s;
    }
    rocksdb::Status Sync() override {
      rocksdb::Status s = Fault();
      return s.ok() ? rocksdb::WritableFileWrapper::Sync() : s;
    }
    rocksdb::Status Fsync() override {
      rocksdb::Status s = Fault();
      return s.ok() ? rocksdb::WritableFileWrapper::Fsync() : s;
    }

   private:
    rocksdb::Status Fault() const {
      if (env_->full) {
        return rocksdb::Status::NoSpace("injected: No space left on device");
      }
      if (wal_ && env_->wal_io_error) {
        return rocksdb::Status::IOError("injected: EIO");
      }
      return rocksdb::Status::OK();
    }
    std::unique_ptr<rocksdb::WritableFile> base_;
    const FaultyDiskEnv* env_;
    const bool wal_;
  };
};

}  // namespace caseledger::testing

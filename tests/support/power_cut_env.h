// A RocksDB Env for tests that cuts the power: what was written but not yet
// synced (fsync/fdatasync) is lost, as the page cache is on a real power
// loss. A SIGKILL keeps the page cache, so only this tests the fsync
// contract.
//
// Until the cut, writes go to the real files (the page cache) and each
// file's synced length is remembered. PowerCut() then makes every later
// operation fail (the machine is off: nothing the dying process does
// reaches the disk), and Restore() truncates every file to what was synced
// and removes files never synced, leaving the directory as the disk would
// be after reboot. A rename is taken as durable once made (RocksDB syncs the
// directory after it; this Env does not model lost renames).
#pragma once

#include <rocksdb/env.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace caseledger::testing {

class PowerCutEnv : public rocksdb::EnvWrapper {
 public:
  PowerCutEnv() : rocksdb::EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "PowerCutEnv"; }

  // From now on, every write, sync, create, rename and delete fails.
  void PowerCut() {
    std::lock_guard<std::mutex> lk(mu_);
    off_ = true;
  }

  // After the store is gone: the disk as it is after the reboot. Returns
  // how many bytes were lost (written, never synced).
  uint64_t Restore() {
    std::lock_guard<std::mutex> lk(mu_);
    uint64_t lost = 0;
    for (const auto& [name, f] : files_) {
      std::error_code ec;
      if (f->synced == 0 && !f->existed) {
        lost += f->written;
        std::filesystem::remove(name, ec);
      } else if (f->written > f->synced) {
        lost += f->written - f->synced;
        std::filesystem::resize_file(name, f->synced, ec);
      }
    }
    files_.clear();
    off_ = false;
    return lost;
  }

  rocksdb::Status NewWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    if (Off()) return PowerIsOff();
    rocksdb::Status s = target()->NewWritableFile(fname, result, options);
    if (s.ok()) Track(fname, result, /*existed=*/false, 0);
    return s;
  }
  rocksdb::Status ReopenWritableFile(
      const std::string& fname, std::unique_ptr<rocksdb::WritableFile>* result,
      const rocksdb::EnvOptions& options) override {
    if (Off()) return PowerIsOff();
    uint64_t size = 0;
    const bool existed = target()->GetFileSize(fname, &size).ok();
    rocksdb::Status s = target()->ReopenWritableFile(fname, result, options);
    if (s.ok()) Track(fname, result, existed, existed ? size : 0);
    return s;
  }
  rocksdb::Status RenameFile(const std::string& src,
                             const std::string& target) override {
    if (Off()) return PowerIsOff();
    rocksdb::Status s = target_rename(src, target);
    if (s.ok()) {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = files_.find(src);
      if (it != files_.end()) {
        files_[target] = it->second;
        files_.erase(it);
      } else {
        files_.erase(target);
      }
    }
    return s;
  }
  rocksdb::Status DeleteFile(const std::string& fname) override {
    if (Off()) return PowerIsOff();
    rocksdb::Status s = target()->DeleteFile(fname);
    if (s.ok()) {
      std::lock_guard<std::mutex> lk(mu_);
      files_.erase(fname);
    }
    return s;
  }

 private:
  struct FileState {
    uint64_t written = 0;  // bytes in the file (page cache)
    uint64_t synced = 0;   // of which on the disk
    bool existed = false;  // the file was there before this Env wrote it
  };

  rocksdb::Status target_rename(const std::string& src,
                                const std::string& dst) {
    return target()->RenameFile(src, dst);
  }
  static rocksdb::Status PowerIsOff() {
    return rocksdb::Status::IOError("injected: the power is off");
  }
  bool Off() {
    std::lock_guard<std::mutex> lk(mu_);
    return off_;
  }
  void Track(const std::string& fname,
             std::unique_ptr<rocksdb::WritableFile>* result, bool existed,
             uint64_t size) {
    auto state = std::make_shared<FileState>();
    state->existed = existed;
    state->written = size;
    state->synced = size;
    {
      std::lock_guard<std::mutex> lk(mu_);
      files_[fname] = state;
    }
    *result = std::make_unique<File>(std::move(*result), this, state);
  }

  class File : public rocksdb::WritableFileWrapper {
   public:
    File(std::unique_ptr<rocksdb::WritableFile> base, PowerCutEnv* env,
         std::shared_ptr<FileState> state)
        : rocksdb::WritableFileWrapper(base.get()),
          base_(std::move(base)),
          env_(env),
          state_(std::move(state)) {}
    rocksdb::Status Append(const rocksdb::Slice& data) override {
      if (env_->Off()) return PowerIsOff();
      rocksdb::Status s = rocksdb::WritableFileWrapper::Append(data);
      if (s.ok()) Grow(data.size());
      return s;
    }
    rocksdb::Status Append(const rocksdb::Slice& data,
                           const rocksdb::DataVerificationInfo& info) override {
      if (env_->Off()) return PowerIsOff();
      rocksdb::Status s = rocksdb::WritableFileWrapper::Append(data, info);
      if (s.ok()) Grow(data.size());
      return s;
    }
    rocksdb::Status PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset) override {
      if (env_->Off()) return PowerIsOff();
      rocksdb::Status s =
          rocksdb::WritableFileWrapper::PositionedAppend(data, offset);
      if (s.ok()) {
        std::lock_guard<std::mutex> lk(env_->mu_);
        state_->written = std::max(state_->written, offset + data.size());
      }
      return s;
    }
    rocksdb::Status Truncate(uint64_t size) override {
      if (env_->Off()) return PowerIsOff();
      rocksdb::Status s = rocksdb::WritableFileWrapper::Truncate(size);
      if (s.ok()) {
        std::lock_guard<std::mutex> lk(env_->mu_);
        state_->written = size;
        state_->synced = std::min(state_->synced, size);
      }
      return s;
    }
    rocksdb::Status Flush() override {
      if (env_->Off()) return PowerIsOff();
      return rocksdb::WritableFileWrapper::Flush();
    }
    rocksdb::Status Sync() override { return Durable(false); }
    rocksdb::Status Fsync() override { return Durable(true); }
    rocksdb::Status Close() override {
      // Closing is not syncing: what was not synced stays at risk.
      return rocksdb::WritableFileWrapper::Close();
    }

   private:
    void Grow(size_t n) {
      std::lock_guard<std::mutex> lk(env_->mu_);
      state_->written += n;
    }
    rocksdb::Status Durable(bool full) {
      if (env_->Off()) return PowerIsOff();
      // What is written at this moment is what the sync makes durable.
      uint64_t upto;
      {
        std::lock_guard<std::mutex> lk(env_->mu_);
        upto = state_->written;
      }
      rocksdb::Status s = full ? rocksdb::WritableFileWrapper::Fsync()
                               : rocksdb::WritableFileWrapper::Sync();
      if (s.ok()) {
        std::lock_guard<std::mutex> lk(env_->mu_);
        state_->synced = std::max(state_->synced, upto);
      }
      return s;
    }
    std::unique_ptr<rocksdb::WritableFile> base_;
    PowerCutEnv* env_;
    std::shared_ptr<FileState> state_;
  };

  std::mutex mu_;
  bool off_ = false;
  std::map<std::string, std::shared_ptr<FileState>> files_;
};

}  // namespace caseledger::testing

#include "caseledger/storage.h"

#include <rocksdb/env.h>
#include <rocksdb/listener.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>
#include <string>

namespace caseledger {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg = std::string(context) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsNoSpace()) return Status::NoSpace(std::move(msg));
  return Status::IOError(std::move(msg));
}

namespace {

class SpdlogRocksLogger final : public rocksdb::Logger {
 public:
  explicit SpdlogRocksLogger(std::shared_ptr<spdlog::logger> logger)
      : rocksdb::Logger(logger && logger->should_log(spdlog::level::debug)
                            ? rocksdb::InfoLogLevel::INFO_LEVEL
                            : rocksdb::InfoLogLevel::WARN_LEVEL),
        logger_(std::move(logger)) {}

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Write(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    Write(level, format, ap);
  }

 private:
  void Write(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
    if (!logger_) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buf, sizeof(buf), format, copy);
    va_end(copy);
    if (n < 0) return;
    std::string text(buf, std::min(static_cast<size_t>(n), sizeof(buf) - 1));
    // One step down: RocksDB's errors are the store's warnings (the store
    // reports what it makes of them as its own errors).
    spdlog::level::level_enum to =
        level >= rocksdb::InfoLogLevel::ERROR_LEVEL  ? spdlog::level::warn
        : level == rocksdb::InfoLogLevel::WARN_LEVEL ? spdlog::level::info
                                                     : spdlog::level::debug;
    try {
      logger_->log(to, "rocksdb: {}", text);
    } catch (...) {
      // A log line is never worth an exception inside RocksDB.
    }
  }

  std::shared_ptr<spdlog::logger> logger_;
};

class ManualRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

}  // namespace

std::shared_ptr<rocksdb::EventListener> ManualErrorRecovery() {
  return std::make_shared<ManualRecovery>();
}

std::shared_ptr<rocksdb::Logger> RocksLogger(
    std::shared_ptr<spdlog::logger> logger) {
  return std::make_shared<SpdlogRocksLogger>(std::move(logger));
}

}  // namespace caseledger

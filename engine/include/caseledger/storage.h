// What every RocksDB database the product opens (the event store's, the
// read models') shares: big-endian coding of keys and values, RocksDB's
// statuses as ours, and RocksDB's own log.
//
// RocksDB's own log (its "info log") is routed into spdlog, instead of a LOG
// file in the data directory. That file is written on every flush,
// compaction and error recovery; once the disk is full, RocksDB's writer of
// it aborts the process on its next line (an assertion on a file writer
// that has already failed). Every RocksDB the product opens takes this
// logger.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "caseledger/status.h"

namespace rocksdb {
class EventListener;
class Logger;
class Status;
}  // namespace rocksdb
namespace spdlog {
class logger;
}

namespace caseledger {

// Fixed-width big-endian integers: RocksDB's bytewise key order is then
// numeric order.
inline void PutBe64(std::string* dst, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    buf[i] = static_cast<char>(static_cast<uint8_t>(v >> (56 - 8 * i)));
  }
  dst->append(buf, 8);
}
inline void PutBe32(std::string* dst, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) {
    buf[i] = static_cast<char>(static_cast<uint8_t>(v >> (24 - 8 * i)));
  }
  dst->append(buf, 4);
}
inline uint64_t GetBe64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint32_t GetBe32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline std::string Be64(uint64_t v) {
  std::string s;
  PutBe64(&s, v);
  return s;
}
// The first eight bytes of `s` (fewer: those there are, as the high ones).
inline uint64_t FromBe64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(s[i]);
  }
  return v;
}

// A RocksDB status as ours, its message prefixed by `context`: OK stays OK;
// corruption, not found and a full disk keep their meaning; anything else
// is an I/O error.
Status FromRocks(const rocksdb::Status& s, std::string_view context);

// RocksDB's lines go to `logger` (its errors as warnings, its warnings as
// information, the rest at debug). Null `logger`: they are dropped. RocksDB
// formats only the levels `logger` would show.
std::shared_ptr<rocksdb::Logger> RocksLogger(
    std::shared_ptr<spdlog::logger> logger);

// A listener that turns off RocksDB's automatic recovery from background
// errors (a full disk): the owner of the database recovers it itself with
// DB::Resume(), because it must also bring its own state in line with what
// is stored, and RocksDB's retries would race it (Resume() answers Busy
// while they run).
std::shared_ptr<rocksdb::EventListener> ManualErrorRecovery();

}  // namespace caseledger

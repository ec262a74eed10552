// RocksDB's own log (its "info log") routed into spdlog, instead of a LOG
// file in the data directory. That file is written on every flush,
// compaction and error recovery; once the disk is full, RocksDB's writer of
// it aborts the process on its next line (an assertion on a file writer
// that has already failed). Every RocksDB the product opens takes this
// logger.
#pragma once

#include <memory>

namespace rocksdb {
class EventListener;
class Logger;
}  // namespace rocksdb
namespace spdlog {
class logger;
}

namespace caseledger {

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

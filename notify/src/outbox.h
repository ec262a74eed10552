// The outbox: the notifier's own RocksDB database (<data>/notify). It holds
// every notification planned, its attempts and outcome, the deadlines being
// watched, and the position of the log the notifier has planned up to.
//
// What is planned from a batch of events is written with the new position
// in one synced WriteBatch, so a crash never loses a plan nor makes one
// twice. An attempt's outcome is written after the attempt, to the
// write-ahead log without waiting for its sync, and a delivery lane syncs
// the log once per batch of attempts (Sync): a process that dies keeps
// every outcome written (the operating system holds them), and a power cut
// can lose the outcomes of the batch in flight, whose messages are then
// sent again, with the same ids. Either way, a crash between sending and
// recording sends that message again, with its id.
#pragma once

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "caseledger/notify/rules.h"
#include "caseledger/status.h"
#include "caseledger/types.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb
namespace spdlog {
class logger;
}

namespace caseledger::notify::internal {

// One notification to one person on one channel.
struct Record {
  std::string id;  // msg_<32 hex>: stable, the receivers' duplicate check
  Notice notice;
  std::string channel;  // email, webhook
  std::string lane;     // smtp, webhook:<endpoint>
  std::string status;   // pending, delivered, dead, withheld
  uint32_t attempts = 0;
  Timestamp created_at;
  Timestamp next_attempt_at;  // while pending
  Timestamp finished_at;      // once delivered, dead or withheld
  std::string last_error;
  uint64_t position = 0;  // the log position it was planned at (0: a timer)

  nlohmann::json ToJson() const;
  static StatusOr<Record> FromJson(const nlohmann::json& j);
};

struct Attempt {
  uint32_t number = 0;
  Timestamp at;
  int64_t micros = 0;  // how long it took
  bool ok = false;
  std::string detail;  // the receiver's answer, or the error
};

class Outbox {
 public:
  static StatusOr<std::unique_ptr<Outbox>> Open(
      const std::string& dir, std::shared_ptr<spdlog::logger> logger);
  ~Outbox();

  // The log position planned up to, and when alerting was first enabled
  // (events recorded before it are history).
  uint64_t position() const { return position_.load(); }
  Timestamp since() const { return since_; }

  // Stores new notifications and timers, and the new position if not 0:
  // all or nothing, synced. A record whose id is stored already is left as
  // it is; a timer replaces the one with its key unless that one watches
  // the same due time at the same stage or later.
  Status Commit(const std::vector<Record>& records,
                const std::vector<Timer>& timers,
                const std::vector<Timer>& fired, uint64_t position);

  // Timers due at `now`, earliest first, at most `max`.
  StatusOr<std::vector<Timer>> DueTimers(Timestamp now, size_t max) const;
  std::optional<Timestamp> NextTimer() const;

  // Pending notifications of `lane` due at `now`, at most `max`. Queue
  // entries a record has moved on from are dropped on the way.
  StatusOr<std::vector<Record>> Due(const std::string& lane, Timestamp now,
                                    size_t max);
  // Every lane with something queued.
  StatusOr<std::set<std::string>> QueuedLanes() const;
  std::optional<Timestamp> NextDue(const std::string& lane) const;

  // Records an attempt (if any) and the record's new state, not synced
  // (Sync() does). `was` is the record as read (its queue entry goes).
  Status Update(const Record& was, const Record& now,
                const std::optional<Attempt>& attempt);
  // Makes every Update before it durable.
  Status Sync();

  // Newest first, from before `before_id`'s (empty: the newest), at most
  // `limit`; `status` filters when not empty. Each with its attempts.
  // `next` (empty at the end) is where the following page starts: a
  // filtered page stops early after looking at kListScan records, so that
  // no request reads the whole outbox.
  struct Page {
    std::vector<std::pair<Record, std::vector<Attempt>>> rows;
    std::string next;
  };
  static constexpr size_t kListScan = 5000;
  StatusOr<Page> List(const std::string& status, const std::string& before_id,
                      size_t limit) const;
  StatusOr<std::optional<Record>> Get(const std::string& id) const;

  uint64_t pending() const { return pending_.load(); }
  uint64_t dead() const { return dead_.load(); }

 private:
  Outbox() = default;
  Status Load();
  void PutRecord(rocksdb::WriteBatch* b, const Record& r) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<uint64_t> position_{0};
  Timestamp since_;
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> dead_{0};
};

// The queue key of a pending record.
std::string QueueKey(const std::string& lane, Timestamp due,
                     const std::string& id);

}  // namespace caseledger::notify::internal

// EventStoreImpl: the RocksDB-backed EventStore.
//
// Threads: one group of appends is processed at a time. A blocking Append
// that finds the store idle processes its own request on its own thread; any
// other append is queued, and the writer thread drains everything queued (up
// to the group bounds) as one group once the current group is done. It checks
// each request against the committed state plus what earlier requests of the
// same group will write, builds one WriteBatch for the accepted ones, writes it
// with the configured sync, then publishes the new committed position and
// completes the callers. Rejected requests consume no position, so the log
// is gapless by construction.
//
// Reads run on the caller's thread straight against RocksDB, bounded by the
// committed position, so a reader never sees a position before every lower
// one is durable.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "caseledger/event_store.h"
#include "caseledger/mutex.h"
#include "engine/src/key_format.h"
#include "engine/src/record.h"

namespace caseledger::internal {

inline std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

// A bounded LRU map from case id to its head. Used only by the writer thread.
class StreamHeadCache {
 public:
  explicit StreamHeadCache(size_t capacity) : capacity_(capacity) {}
  const StreamHead* Find(const std::string& id);
  void Put(const std::string& id, const StreamHead& head);
  void Clear() {
    order_.clear();
    map_.clear();
  }

 private:
  using Entry = std::pair<std::string, StreamHead>;
  size_t capacity_;
  std::list<Entry> order_;  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
};

// Opens a store whose RocksDB runs on `env` (tests inject storage faults
// through it). `env` must outlive the store.
Status OpenWithEnv(const Options& options, const std::string& path,
                   rocksdb::Env* env, std::unique_ptr<EventStore>* store);

class EventStoreImpl final : public EventStore {
 public:
  EventStoreImpl(const Options& options, std::string path,
                 rocksdb::Env* env = nullptr);
  ~EventStoreImpl() override;

  // Opens RocksDB, checks the format and recovers the head.
  Status Init();

  void AppendAsync(std::string stream_id, ExpectedVersion expected,
                   std::vector<ProposedEvent> events,
                   AppendCallback done) override;
  StatusOr<AppendResult> Append(std::string_view stream_id,
                                ExpectedVersion expected,
                                std::vector<ProposedEvent> events) override;
  StatusOr<std::vector<RecordedEvent>> ReadStream(std::string_view stream_id,
                                                  StreamVersion from,
                                                  Direction direction,
                                                  size_t limit) const override;
  StatusOr<std::vector<RecordedEvent>> ReadAll(GlobalPosition after,
                                               size_t limit) const override;
  Status AppendReplicated(const std::vector<std::string>& records,
                          ReplicaApplyResult* result) override;
  StatusOr<RecordedEvent> ReadEvent(const EventId& id) const override;
  StatusOr<StreamVersion> GetStreamVersion(
      std::string_view stream_id) const override;
  LogHead Head() const override;
  Timestamp Now() const override {
    return options_.clock ? options_.clock() : NowUtc();
  }
  GlobalPosition committed_position() const override {
    return GlobalPosition(committed_.load(std::memory_order_acquire));
  }
  bool WaitForPosition(GlobalPosition position,
                       std::chrono::milliseconds timeout) const override;
  std::unique_ptr<Subscription> Subscribe(GlobalPosition after) const override;
  StatusOr<GlobalPosition> Backup(const std::string& dir) override;
  StatusOr<VerifyReport> Verify(
      std::optional<std::string> stream_id) const override;
  Status Close() override;
  StoreStats stats() const override;
  Status Health() const override;
  Status Resume() override;

  // Waits until a commit past `after` or closing; true if there is news.
  bool WaitForCommitAfter(uint64_t after,
                          std::chrono::milliseconds timeout) const;
  bool closing() const { return closing_.load(std::memory_order_acquire); }

 private:
  struct Request {
    std::string stream_id;
    ExpectedVersion expected = ExpectedVersion::Any();
    std::vector<ProposedEvent> events;
    AppendCallback done;
    size_t bytes = 0;
  };

  // Runs r.done on the writer thread; an exception it throws is logged.
  void Complete(Request& r, StatusOr<AppendResult> result);

  // An event written by an earlier request of the group being built.
  struct PendingEvent {
    size_t value_index;  // into Group::values
  };

  // What one group of appends (or of replicated records) will write.
  struct Group {
    rocksdb::WriteBatch batch;
    uint64_t position = 0;  // last position assigned
    Hash log_hash{};
    std::unordered_map<std::string, StreamHead> heads;  // changed this group
    std::unordered_map<std::string, size_t> ids;        // id key -> values
    std::vector<std::string> values;                    // records this group
  };

  Status ValidateRequest(const Request& r) const;
  // Takes and gives back the writer state (no group is written meanwhile);
  // false if the store is closing.
  bool AcquireWriter() EXCLUDES(queue_mu_);
  void ReleaseWriter() EXCLUDES(queue_mu_);
  // The writer thread may take the next group (or stop).
  bool WriterReady() const REQUIRES(queue_mu_) {
    return !writing_ && backups_waiting_ == 0 &&
           (stop_writer_ || !queue_.empty());
  }
  // A validated request, without its callback.
  StatusOr<Request> MakeRequest(std::string stream_id, ExpectedVersion expected,
                                std::vector<ProposedEvent> events) const;
  void WriterLoop();
  void ProcessGroup(std::vector<Request>& requests);
  // With the writer state held: the store after a failed write, brought
  // back (RocksDB resumed, its memtables flushed so that the write-ahead
  // log the failed write touched is retired, the head read again from what
  // is stored). OK when appends may go on.
  Status Recover();
  // With the writer state held: Recover() if the failure is a full disk and
  // the last try was long enough ago.
  void MaybeRecover();
  void SetFailure(Status failure);
  StatusOr<AppendResult> Decide(Request& r, Group& g);
  StatusOr<StreamHead> LoadStreamHead(const std::string& stream_id);
  StatusOr<std::optional<AppendResult>> CheckDuplicates(const Request& r,
                                                        Group& g);

  StatusOr<RecordedEvent> ReadAtPosition(uint64_t position) const;
  // With the writer state held: checks one replicated record against the
  // chain heads and the group so far and adds it to `g`; false (with
  // *skip) when it is already stored as it is.
  Status AddReplicated(std::string_view record, Group& g, bool* skip);
  // With the writer state held: writes a group and publishes its head, or
  // fails the store (appends are refused until it recovers).
  Status WriteGroup(Group& g);
  StatusOr<VerifyReport> VerifyStream(const std::string& stream_id) const;
  StatusOr<VerifyReport> VerifyLog() const;
  Status CheckOpen() const;
  // Opens the database (db_, handles_ and the column families), or closes
  // it; under db_mu_ held exclusively once readers may be about.
  rocksdb::Status OpenDb(bool read_only);
  rocksdb::Status CloseDb();
  // Marks a new store with the format this build writes (synced).
  Status WriteFormatMarker();
  // The position and log hash of the log's last stored record (0 and zeros
  // for an empty log).
  Status ReadStoredHead(uint64_t* position, Hash* hash) const;

  const Options options_;
  const std::string path_;
  rocksdb::Env* const env_;  // null: RocksDB's default
  std::shared_ptr<spdlog::logger> logger_;

  // The open database. Readers hold db_mu_ shared while they use it; it
  // is replaced only under db_mu_ held exclusively, and with the writer
  // state held (Recover, after a read-only open on a full disk).
  // (db_ and the handles are not annotated GUARDED_BY: the thread that owns
  // the writer state also uses them without db_mu_, since no swap can
  // happen while it owns that state.)
  mutable SharedMutex db_mu_;
  rocksdb::DBOptions dbo_;
  std::vector<rocksdb::ColumnFamilyDescriptor> descs_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // Opened read-only because the disk was full: appends wait for Recover
  // to open it writable.
  bool read_only_for_space_ = false;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* stream_index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* event_ids_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* streams_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::WriteOptions write_options_;
  // Set when the recorded head disagrees with the log (read-only opens only;
  // a writable open refuses such a store). Reported by Verify.
  std::string head_mismatch_;

  // The request queue, filled by callers and drained by the writer.
  Mutex queue_mu_;
  CondVar queue_cv_;  // waits on queue_mu_
  std::deque<Request> queue_ GUARDED_BY(queue_mu_);
  bool stop_writer_ GUARDED_BY(queue_mu_) = false;
  // True while a thread (the writer, or a blocking Append on its own
  // thread) owns the writer state below and is processing a group.
  bool writing_ GUARDED_BY(queue_mu_) = false;
  // Backups and resumes waiting for the writer state (AcquireWriter): no new
  // group starts meanwhile.
  int backups_waiting_ GUARDED_BY(queue_mu_) = 0;
  std::thread writer_;

  // Writer state, owned by whichever thread has set writing_: the last
  // position assigned and the chain heads.
  uint64_t last_position_ = 0;
  Hash last_log_hash_{};
  StreamHeadCache stream_cache_;
  // Set after a failed write: the store refuses appends until it recovers
  // (by itself from a full disk, see MaybeRecover; on Resume(); or when
  // reopened).
  Status write_failure_;
  std::chrono::steady_clock::time_point last_recovery_try_{};
  std::chrono::steady_clock::duration recovery_delay_ = std::chrono::seconds(1);
  std::atomic<bool> write_failed_{false};  // mirrors !write_failure_.ok()
  mutable Mutex failure_mu_;
  // A copy of write_failure_ for Health().
  Status failure_report_ GUARDED_BY(failure_mu_);

  // Counters behind stats(); written by the writer only.
  struct AtomicStats {
    std::atomic<uint64_t> appends_committed{0}, events_committed{0},
        appends_deduplicated{0}, appends_rejected{0}, groups_committed{0},
        decide_micros{0}, write_micros{0}, write_failures{0}, recoveries{0};
  };
  AtomicStats stats_;

  // Published state, read by every thread.
  std::atomic<uint64_t> committed_{0};
  std::atomic<bool> closing_{false};
  mutable Mutex commit_mu_;
  mutable CondVar commit_cv_;  // waits on commit_mu_
  LogHead committed_head_ GUARDED_BY(commit_mu_);

  Mutex close_mu_;
  bool closed_ GUARDED_BY(close_mu_) = false;
};

}  // namespace caseledger::internal

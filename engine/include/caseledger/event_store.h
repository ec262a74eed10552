// EventStore: the append-only, tamper-evident log of every case's events.
//
// Lifecycle: Open() a directory, use the store from any number of threads,
// then destroy it (or call Close()), which waits for appends in flight, stops
// the writer and closes RocksDB. All methods are thread-safe.
//
// Ordering: every event gets a global position, 1-based and gapless, in commit
// order. A position becomes visible to readers (ReadAll, subscriptions,
// committed_position()) only after the WriteBatch that holds it is durable, and
// positions become visible in order, so a reader that has seen position P has
// seen every position below P.
//
// Tamper evidence: each event stores two SHA-256 links, one chaining the
// case's events and one chaining the whole log (engine/FORMAT.md). Verify()
// recomputes them and names the first broken link.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/options.h"
#include "caseledger/status.h"
#include "caseledger/types.h"

namespace caseledger {

enum class Direction : uint8_t { kForward, kBackward };

// A cursor over the whole log, from a position onwards: it first reads what is
// already on disk, then waits for new commits. Events arrive in position
// order, without gaps or duplicates. The consumer pulls, so a slow consumer
// never slows the writer: that is the back-pressure.
//
// Not thread-safe: one consumer thread per Subscription. It may outlive
// nothing: destroy it before its EventStore.
class Subscription {
 public:
  virtual ~Subscription() = default;

  // Returns the next events after position(), at most `max`. Blocks up to
  // `timeout` when none is committed yet, then returns an empty vector.
  // kUnavailable once the store is closing.
  virtual StatusOr<std::vector<RecordedEvent>> Next(
      size_t max, std::chrono::milliseconds timeout) = 0;

  // The position of the last event returned (or the starting position).
  virtual GlobalPosition position() const = 0;
};

// The outcome of Verify(). `ok` is false when a link is broken; `first_broken`
// then names where and why. A storage failure is a non-OK Status instead.
struct VerifyReport {
  bool ok = true;
  uint64_t events_checked = 0;
  uint64_t streams_checked = 0;
  struct Break {
    GlobalPosition position;  // where the check failed (the expected one
                              // when an event is missing)
    std::string stream_id;    // when known
    StreamVersion version;    // when known
    std::string reason;
  };
  std::optional<Break> first_broken;
};

// Counters since the store was opened, for metrics. Each is monotonic.
struct StoreStats {
  uint64_t appends_committed = 0;     // append calls that wrote events
  uint64_t events_committed = 0;      // events written
  uint64_t appends_deduplicated = 0;  // retries answered from the log
  uint64_t appends_rejected = 0;      // conflicts and other refusals
  uint64_t groups_committed = 0;      // synced WriteBatches (one fsync each)
  uint64_t decide_micros = 0;         // writer time spent building batches
  uint64_t write_micros = 0;          // writer time inside RocksDB Write
  uint64_t write_failures = 0;        // writes that failed (store refused)
  uint64_t recoveries = 0;            // times appends resumed after one
};

// What AppendReplicated did before it returned (also when it failed).
struct ReplicaApplyResult {
  uint64_t applied = 0;  // records written, in order
  uint64_t skipped = 0;  // records already stored, byte for byte
};

class EventStore {
 public:
  // Opens (or, with options.create_if_missing, creates) the store in `path`.
  // Recovery reads the log's head (last position and hash) from its last
  // record without scanning the log. On success `*store` owns the store.
  // kFailedPrecondition if the directory is locked by another process;
  // kCorruption if the recorded head does not match the log's last event.
  static Status Open(const Options& options, const std::string& path,
                     std::unique_ptr<EventStore>* store);

  EventStore() = default;
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  virtual ~EventStore() = default;

  using AppendCallback = std::function<void(StatusOr<AppendResult>)>;

  // Appends `events` to case `stream_id`, atomically: all of them or none.
  //
  // Idempotency: if every event's id is already stored, on this case, in this
  // order, with the same content, the call returns the original versions and
  // positions with `deduplicated` set, writes nothing, and ignores
  // `expected` (a retry must succeed whatever happened in between). If some
  // ids are stored but not all, or an id is stored with other content,
  // kAlreadyExists and nothing is written.
  //
  // Otherwise `expected` is checked against the case's version; a mismatch
  // is kAborted with Status::current_version() set.
  //
  // The callback runs on the writer thread once the batch is durable (see
  // Options::sync) or rejected; it must not block or call back into
  // Append synchronously. An exception it throws is logged and goes no
  // further. Validation errors may run it on the caller's thread
  // before AppendAsync returns.
  virtual void AppendAsync(std::string stream_id, ExpectedVersion expected,
                           std::vector<ProposedEvent> events,
                           AppendCallback done) = 0;

  // Blocking form of AppendAsync.
  virtual StatusOr<AppendResult> Append(std::string_view stream_id,
                                        ExpectedVersion expected,
                                        std::vector<ProposedEvent> events) = 0;

  // Appends records another store committed, exactly as they are (see
  // EncodeStoredRecord): a replica's log is its primary's, byte for byte,
  // with the same head hash at the same position.
  //
  // In order, each record must decode and be at the next position, be the
  // next version of its case, carry an event id not stored before, and
  // both its hashes must recompute from the chain heads (the previous
  // record's log hash, the case's previous case hash). A record at a
  // position already stored is skipped when its bytes are the stored ones
  // (a redelivery), and is a break otherwise. At the first break the
  // records before it are written, nothing after it is, and the call
  // returns kCorruption naming the position and the reason. Written with
  // the store's sync option, serialised with appends; subscribers see the
  // records as they would appended ones.
  virtual Status AppendReplicated(const std::vector<std::string>& records,
                                  ReplicaApplyResult* result) = 0;

  // Reads up to `limit` events of a case starting at version `from`
  // (inclusive), forward or backward. Backward from a version past the end
  // starts at the last event. An unknown case yields an empty vector.
  virtual StatusOr<std::vector<RecordedEvent>> ReadStream(
      std::string_view stream_id, StreamVersion from, Direction direction,
      size_t limit) const = 0;

  // Reads up to `limit` events of the whole log with position > `after`.
  virtual StatusOr<std::vector<RecordedEvent>> ReadAll(GlobalPosition after,
                                                       size_t limit) const = 0;

  // One event by id; kNotFound if it is not stored.
  virtual StatusOr<RecordedEvent> ReadEvent(const EventId& id) const = 0;

  // The case's current version; 0 for a case with no events.
  virtual StatusOr<StreamVersion> GetStreamVersion(
      std::string_view stream_id) const = 0;

  // The store's clock (Options::clock): what stamps recorded-at, and what
  // every layer above takes as now.
  virtual Timestamp Now() const = 0;

  // The last durable position and its log hash.
  virtual LogHead Head() const = 0;
  virtual GlobalPosition committed_position() const = 0;

  // Blocks until committed_position() >= `position` or the timeout passes;
  // returns whether it was reached.
  virtual bool WaitForPosition(GlobalPosition position,
                               std::chrono::milliseconds timeout) const = 0;

  // A cursor that yields events with position > `after`.
  virtual std::unique_ptr<Subscription> Subscribe(
      GlobalPosition after) const = 0;

  // Recomputes the hash chains and index links. With a stream id, only that
  // case's chain (and each event's link into the log chain); without, the
  // whole log, every case, the indexes and the recorded heads.
  virtual StatusOr<VerifyReport> Verify(
      std::optional<std::string> stream_id) const = 0;

  // Writes a consistent copy of the store to the new directory `dir` (a
  // RocksDB checkpoint: hard links where the file system allows, copies
  // elsewhere) and returns the position it holds every event up to, exactly:
  // appends wait while it is taken (they are queued, not refused). The copy
  // is a store of its own: open, verify or serve it. kAlreadyExists if
  // `dir` exists; kFailedPrecondition on a read-only store.
  virtual StatusOr<GlobalPosition> Backup(const std::string& dir) = 0;

  virtual StoreStats stats() const = 0;

  // OK while the store accepts appends. kFailedPrecondition when opened
  // read-only, kUnavailable once closing, and after a failed write the
  // failure, with its cause: kNoSpace (the disk is full) or kIOError.
  // While failed, appends are refused with that status and write nothing;
  // reads go on.
  virtual Status Health() const = 0;

  // Recovers from a failed write without reopening: RocksDB resumes, its
  // memtables are flushed (retiring the write-ahead log the failed write
  // touched) and the log's head is read again from what is stored, so an
  // append that failed is either wholly there or never will be, and every
  // acknowledged one is. OK if appends may go on (also when nothing had
  // failed); otherwise why not (the disk is still full, ...). A store whose
  // disk filled up recovers by itself within a second or two of space being
  // freed (this call only hastens it). An I/O error on the write-ahead log
  // (an fsync error may have lost pages already written) is not recovered
  // from: RocksDB holds it fatal, and only a reopen (a restart, which
  // replays what is durable) brings appends back.
  virtual Status Resume() = 0;

  // Waits for appends in flight, stops the writer and flushes. Idempotent;
  // the destructor calls it. Later calls return kUnavailable.
  virtual Status Close() = 0;
};

// Restores a backup (a directory EventStore::Backup made) as the store in
// `dir`, which must not exist or be empty: the backup's files are copied
// into a new directory beside `dir` and synced, the copy is opened
// read-only and verified whole (every hash and index link), and only then
// renamed to `dir`. A backup that does not verify is refused (kCorruption,
// naming the first broken link) and nothing is left behind. Returns the
// position the restored log ends at. The read models are not in a backup:
// a server started on `dir` rebuilds them from the log.
StatusOr<GlobalPosition> RestoreBackup(const std::string& backup,
                                       const std::string& dir,
                                       const Options& options = {});

// The bytes the log stores for `e` (engine/FORMAT.md): the canonical
// fields, then the case and log hashes as `e` carries them. What a replica
// ships; re-encoding a stored event gives its stored bytes exactly.
std::string EncodeStoredRecord(const RecordedEvent& e);

// Decodes stored record bytes without checking their hashes; kCorruption
// when they do not parse.
StatusOr<RecordedEvent> DecodeStoredRecord(std::string_view bytes);

// Visits the events of a stream in version order, from `from` through
// `through` (inclusive; 0 means to the end), reading them in pages. Stops at
// the first non-OK status `visit` returns, and returns it.
Status ForEachInStream(
    const EventStore& store, std::string_view stream_id, StreamVersion from,
    uint64_t through, const std::function<Status(const RecordedEvent&)>& visit);

}  // namespace caseledger

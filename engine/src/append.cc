// EventStoreImpl's appends: validation, the writer thread's group commit,
// optimistic concurrency, idempotency, failure and recovery.
#include <rocksdb/utilities/checkpoint.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <future>
#include <limits>
#include <set>

#include "caseledger/storage.h"
#include "engine/src/event_store_impl.h"

namespace caseledger::internal {

namespace {

constexpr size_t kMaxTypeLength = 128;
constexpr size_t kMaxFieldLength = 256;

uint64_t MicrosSince(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::steady_clock::now() - t0)
          .count());
}

// Full JSON validation (grammar and UTF-8) with simdjson, which checks
// without building a document; each thread keeps its parser's buffers.
bool IsJsonDocument(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text.data(), text.size(), true).get(doc) ==
         simdjson::SUCCESS;
}

}  // namespace

// ---------------------------------------------------------------------------
// Appends

Status EventStoreImpl::ValidateRequest(const Request& r) const {
  RETURN_IF_ERROR(ValidateStreamId(r.stream_id));
  if (r.events.empty()) {
    return Status::InvalidArgument("an append needs at least one event");
  }
  if (r.events.size() > options_.max_events_per_append) {
    return Status::InvalidArgument(
        "an append may hold at most " +
        std::to_string(options_.max_events_per_append) + " events");
  }
  std::set<EventId> ids;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const ProposedEvent& e = r.events[i];
    std::string where = "event " + std::to_string(i) + ": ";
    if (e.type.empty() || e.type.size() > kMaxTypeLength) {
      return Status::InvalidArgument(where +
                                     "type must be 1 to 128 characters");
    }
    if (e.actor.id.empty() || e.actor.role.empty()) {
      return Status::InvalidArgument(where +
                                     "an actor id and role are required");
    }
    if (e.actor.id.size() > kMaxFieldLength ||
        e.actor.role.size() > kMaxFieldLength ||
        e.correlation_id.size() > kMaxFieldLength ||
        e.causation_id.size() > kMaxFieldLength) {
      return Status::InvalidArgument(
          where + "actor, correlation and causation ids are at most 256 bytes");
    }
    if (e.payload.size() > options_.max_event_bytes) {
      return Status::InvalidArgument(where + "payload exceeds " +
                                     std::to_string(options_.max_event_bytes) +
                                     " bytes");
    }
    if (!IsJsonDocument(e.payload)) {
      return Status::InvalidArgument(where + "payload is not a JSON document");
    }
    if (!e.event_id.IsNil() && !ids.insert(e.event_id).second) {
      return Status::InvalidArgument(where + "event id " +
                                     e.event_id.ToString() +
                                     " appears twice in one append");
    }
  }
  return Status::OK();
}

StatusOr<EventStoreImpl::Request> EventStoreImpl::MakeRequest(
    std::string stream_id, ExpectedVersion expected,
    std::vector<ProposedEvent> events) const {
  if (options_.read_only) {
    return Status::FailedPrecondition("the store is open read-only");
  }
  if (options_.replica) {
    return Status::FailedPrecondition(
        "this store is a replica: its log comes from its primary only");
  }
  Request r{std::move(stream_id), expected, std::move(events), nullptr, 0};
  RETURN_IF_ERROR(ValidateRequest(r));
  for (const auto& e : r.events) r.bytes += e.payload.size() + 128;
  return r;
}

void EventStoreImpl::AppendAsync(std::string stream_id,
                                 ExpectedVersion expected,
                                 std::vector<ProposedEvent> events,
                                 AppendCallback done) {
  auto r = MakeRequest(std::move(stream_id), expected, std::move(events));
  if (!r.ok()) {
    done(r.status());
    return;
  }
  r->done = std::move(done);
  // Async callers never write on their own thread (they may be I/O threads
  // that must not wait for an fsync): the writer thread takes the request.
  {
    MutexLock lk(&queue_mu_);
    if (!stop_writer_) {
      queue_.push_back(std::move(*r));
      lk.Unlock();
      queue_cv_.SignalAll();
      return;
    }
  }
  r->done(Status::Unavailable("the event store is closing"));
}

StatusOr<AppendResult> EventStoreImpl::Append(
    std::string_view stream_id, ExpectedVersion expected,
    std::vector<ProposedEvent> events) {
  std::promise<StatusOr<AppendResult>> promise;
  auto future = promise.get_future();
  auto r = MakeRequest(std::string(stream_id), expected, std::move(events));
  if (!r.ok()) return r.status();
  r->done = [&promise](StatusOr<AppendResult> result) {
    promise.set_value(std::move(result));
  };
  {
    MutexLock lk(&queue_mu_);
    if (stop_writer_) {
      return Status::Unavailable("the event store is closing");
    }
    if (writing_ || backups_waiting_ > 0 || !queue_.empty()) {
      // Someone is writing: join the queue; the writer thread takes it next,
      // together with everything else that waits (group commit).
      queue_.push_back(std::move(*r));
      lk.Unlock();
      queue_cv_.SignalAll();
      return future.get();
    }
    // Nobody is writing: write on this thread, saving the two thread
    // hand-offs (to the writer and back) that a lone appender would pay.
    writing_ = true;
  }
  std::vector<Request> group;
  group.push_back(std::move(*r));
  ProcessGroup(group);
  bool wake = false;
  {
    MutexLock lk(&queue_mu_);
    writing_ = false;
    // Only if someone waits for the store to be free: the writer thread for
    // what queued meanwhile (or to stop), or a backup. Waking the idle
    // writer for nothing costs a lone appender a futex call and a context
    // switch per append.
    wake = !queue_.empty() || backups_waiting_ > 0 || stop_writer_;
  }
  if (wake) queue_cv_.SignalAll();
  return future.get();
}

void EventStoreImpl::WriterLoop() {
  for (;;) {
    std::vector<Request> group;
    {
      MutexLock lk(&queue_mu_);
      // Wakes each second too: after a failed write (which a blocking
      // Append may have met on its own thread) it sees whether the store
      // can resume, so readiness comes back without waiting for an append.
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(1);
      while (!WriterReady() && queue_cv_.WaitUntil(&queue_mu_, deadline)) {
      }
      if (!WriterReady()) {
        if (!write_failed_.load(std::memory_order_acquire) || writing_ ||
            backups_waiting_ > 0) {
          continue;
        }
        writing_ = true;
        lk.Unlock();
        MaybeRecover();
        lk.Lock();
        writing_ = false;
        lk.Unlock();
        queue_cv_.SignalAll();
        continue;
      }
      if (queue_.empty()) return;  // stopping, and everything is drained
      writing_ = true;
      size_t bytes = 0;
      while (!queue_.empty() && group.size() < options_.max_group_appends &&
             (group.empty() ||
              bytes + queue_.front().bytes <= options_.max_group_bytes)) {
        bytes += queue_.front().bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ProcessGroup(group);
    {
      MutexLock lk(&queue_mu_);
      writing_ = false;
    }
    queue_cv_.SignalAll();  // a backup may be waiting for the writer state
  }
}

StatusOr<GlobalPosition> EventStoreImpl::Backup(const std::string& dir) {
  RETURN_IF_ERROR(CheckOpen());
  if (options_.read_only) {
    return Status::FailedPrecondition("a read-only store cannot be backed up");
  }
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return Status::AlreadyExists("backup directory " + dir + " exists");
  }
  // Take the writer state, so that no group is written while the checkpoint
  // is taken and the copy ends exactly at last_position_. Appends queue.
  if (!AcquireWriter())
    return Status::Unavailable("the event store is closing");
  if (!db_ || read_only_for_space_) {
    ReleaseWriter();
    return Status::FailedPrecondition(
        "the store is open read-only (the disk was full): no backup until it "
        "accepts appends again");
  }
  const uint64_t position = last_position_;
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status rs = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // 0: flush the memtables first, so the copy needs no WAL replay.
  if (rs.ok()) rs = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
  ReleaseWriter();
  if (!rs.ok()) return FromRocks(rs, "backing up to " + dir);
  logger_->info("backed up to {} at position {}", dir, position);
  return GlobalPosition(position);
}

StatusOr<StreamHead> EventStoreImpl::LoadStreamHead(
    const std::string& stream_id) {
  if (const StreamHead* h = stream_cache_.Find(stream_id)) return *h;
  std::string value;
  rocksdb::Status rs =
      db_->Get(rocksdb::ReadOptions(), streams_cf_, stream_id, &value);
  StreamHead head;
  if (rs.ok()) {
    if (!DecodeStreamHead(value, &head)) {
      return Status::Corruption("head of case " + stream_id +
                                " does not decode");
    }
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading head of case " + stream_id);
  }
  stream_cache_.Put(stream_id, head);
  return head;
}

StatusOr<std::optional<AppendResult>> EventStoreImpl::CheckDuplicates(
    const Request& r, Group& g) {
  // Stored records of the request's events, when their ids are known.
  std::vector<std::string> stored(r.events.size());
  std::vector<bool> found(r.events.size(), false);
  size_t n_found = 0;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const EventId& id = r.events[i].event_id;
    if (id.IsNil()) continue;
    std::string key = EventIdKey(id);
    if (auto it = g.ids.find(key); it != g.ids.end()) {
      stored[i] = g.values[it->second];
    } else {
      std::string pos;
      rocksdb::Status rs =
          db_->Get(rocksdb::ReadOptions(), event_ids_cf_, key, &pos);
      if (rs.IsNotFound()) continue;
      if (!rs.ok()) return FromRocks(rs, "reading event-id index");
      if (pos.size() != 8) return Status::Corruption("event-id index entry");
      rs = db_->Get(rocksdb::ReadOptions(), log_cf_,
                    LogKey(GetBe64(pos.data())), &stored[i]);
      if (!rs.ok()) {
        return FromRocks(rs,
                         "reading the event indexed by id " + id.ToString());
      }
    }
    found[i] = true;
    ++n_found;
  }
  if (n_found == 0) return std::optional<AppendResult>();

  AppendResult result;
  result.deduplicated = true;
  for (size_t i = 0; i < r.events.size(); ++i) {
    if (!found[i]) {
      return Status::AlreadyExists(
          "some events of this append are already stored and some are not; "
          "a retry must resend exactly the original events");
    }
    EventView v;
    RETURN_IF_ERROR(DecodeRecord(stored[i], &v));
    if (!SameContent(v, r.stream_id, r.events[i])) {
      return Status::AlreadyExists("event id " +
                                   r.events[i].event_id.ToString() +
                                   " is already stored with other content");
    }
    if (i == 0) {
      result.first_version = StreamVersion(v.version);
      result.first_position = GlobalPosition(v.position);
    } else if (v.version != result.first_version.value() + i) {
      return Status::AlreadyExists(
          "the event ids are stored, but not as one append in this order");
    }
    result.last_version = StreamVersion(v.version);
    result.last_position = GlobalPosition(v.position);
    result.event_ids.push_back(v.event_id);
  }
  return std::optional<AppendResult>(std::move(result));
}

StatusOr<AppendResult> EventStoreImpl::Decide(Request& r, Group& g) {
  ASSIGN_OR_RETURN(std::optional<AppendResult> dup, CheckDuplicates(r, g));
  if (dup) return std::move(*dup);

  StreamHead head;
  if (auto it = g.heads.find(r.stream_id); it != g.heads.end()) {
    head = it->second;
  } else {
    ASSIGN_OR_RETURN(head, LoadStreamHead(r.stream_id));
  }
  if (!r.expected.Matches(head.version)) {
    return Status::WrongExpectedVersion(
        head.version, "case " + r.stream_id + " is at version " +
                          std::to_string(head.version) + ", expected " +
                          r.expected.ToString());
  }

  const int64_t recorded_at = Now().value();
  AppendResult result;
  result.first_version = StreamVersion(head.version + 1);
  result.first_position = GlobalPosition(g.position + 1);
  for (ProposedEvent& e : r.events) {
    EventId id = e.event_id.IsNil() ? EventId::NewV7() : e.event_id;
    uint64_t version = head.version + 1;
    uint64_t position = g.position + 1;
    std::string value;
    EncodeCanonical(e, id, r.stream_id, version, position, recorded_at, &value);
    Hash case_hash = ChainCaseHash(head.hash, value);
    Hash log_hash = ChainLogHash(g.log_hash, case_hash);
    value.append(reinterpret_cast<const char*>(case_hash.data()), kHashSize);
    value.append(reinterpret_cast<const char*>(log_hash.data()), kHashSize);

    std::string pos_value;
    PutBe64(&pos_value, position);
    std::string id_key = EventIdKey(id);
    g.batch.Put(log_cf_, LogKey(position), value);
    g.batch.Put(stream_index_cf_, StreamIndexKey(r.stream_id, version),
                pos_value);
    g.batch.Put(event_ids_cf_, id_key, pos_value);

    head = StreamHead{version, position, case_hash};
    g.position = position;
    g.log_hash = log_hash;
    g.ids[id_key] = g.values.size();
    g.values.push_back(std::move(value));
    result.event_ids.push_back(id);
  }
  result.last_version = StreamVersion(head.version);
  result.last_position = GlobalPosition(g.position);
  g.heads[r.stream_id] = head;
  return result;
}

void EventStoreImpl::SetFailure(Status failure) {
  if (write_failure_.ok() && !failure.ok()) {
    recovery_delay_ = std::chrono::seconds(1);
    last_recovery_try_ = std::chrono::steady_clock::now();
  }
  write_failure_ = std::move(failure);
  write_failed_.store(!write_failure_.ok(), std::memory_order_release);
  MutexLock lk(&failure_mu_);
  failure_report_ = write_failure_;
}

void EventStoreImpl::MaybeRecover() {
  // A full disk clears when space is freed; other failures (an fsync error
  // may have lost written pages) wait for a reopen.
  if (write_failure_.ok() || !write_failure_.IsNoSpace()) return;
  // Tried after 1 s, then 2 s, then every 4 s: soon after space is freed,
  // without a line in the log each second while the disk stays full.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_recovery_try_ < recovery_delay_) return;
  last_recovery_try_ = now;
  Status s = Recover();
  if (!s.ok()) {
    recovery_delay_ = std::min<std::chrono::steady_clock::duration>(
        recovery_delay_ * 2, std::chrono::seconds(4));
    logger_->debug("the store cannot resume yet: {}", s.ToString());
  }
}

Status EventStoreImpl::Recover() {
  if (write_failure_.ok()) return Status::OK();
  if (read_only_for_space_) {
    // Opened read-only on a full disk: open writable now, or go on
    // reading. Readers wait the few milliseconds the swap takes.
    WriterLock lk(&db_mu_);
    rocksdb::Status closed = CloseDb();
    if (!closed.ok())
      logger_->warn("closing the read-only store: {}", closed.ToString());
    rocksdb::Status rs = OpenDb(false);
    if (!rs.ok()) {
      // Readers answer "reopening" while db_ is null; the next try opens
      // it again.
      rocksdb::Status back = OpenDb(true);
      if (!back.ok()) {
        logger_->error("the store cannot be reopened, even read-only: {}",
                       back.ToString());
      }
      Status s = FromRocks(rs, "opening the store writable");
      SetFailure(Status::NoSpace(
          "the disk is full: appends are refused until space is freed (" +
          s.message() + ")"));
      return s;
    }
    read_only_for_space_ = false;
    // A store first made on this disk may not have its format marker yet
    // (a read-only open cannot write it).
    std::string marker;
    rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFormatKey, &marker);
    if (rs.IsNotFound() && last_position_ == 0) {
      RETURN_IF_ERROR(WriteFormatMarker());
    } else if (!rs.ok()) {
      return FromRocks(rs, "reading format marker");
    }
  }
  if (!db_) return Status::Unavailable("the event store is reopening");
  rocksdb::Status rs = db_->Resume();
  if (rs.ok()) {
    // Every memtable to a table file: the write-ahead log the failed write
    // touched is then obsolete, and can never be replayed after a crash.
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    rs = db_->Flush(fo, handles_);
  }
  if (!rs.ok()) {
    Status s = FromRocks(rs, "resuming the store");
    // Still full, or failing: keep refusing, with the current reason.
    if (s.IsNoSpace() || write_failure_.IsNoSpace()) {
      SetFailure(Status::NoSpace(
          "the disk is full: appends are refused until space is freed (" +
          s.message() + ")"));
    }
    return s;
  }
  // The head as stored: the failed batch is wholly there or not at all.
  uint64_t position = 0;
  Hash hash{};
  RETURN_IF_ERROR(ReadStoredHead(&position, &hash));
  if (position < last_position_) {
    // Never resumed from by itself: the failure becomes this, for an
    // operator to see (Health, /readyz) and act on.
    Status lost = Status::Corruption(
        "after resuming, the log ends at position " + std::to_string(position) +
        " but position " + std::to_string(last_position_) +
        " was acknowledged");
    SetFailure(lost);
    logger_->error("{}", lost.ToString());
    return lost;
  }
  if (position != last_position_) {
    // The failed write reached the log after all: its clients were told it
    // failed (a retry with its Idempotency-Key finds it). Heads cached
    // before it are stale.
    logger_->warn(
        "the failed write is in the log after all (positions {} to {})",
        last_position_ + 1, position);
    stream_cache_.Clear();
    last_position_ = position;
    last_log_hash_ = hash;
    {
      MutexLock lk(&commit_mu_);
      committed_head_ = LogHead{GlobalPosition(position), hash};
      committed_.store(position, std::memory_order_release);
    }
    commit_cv_.SignalAll();
  }
  logger_->warn("the store accepts appends again (log at position {})",
                position);
  SetFailure(Status::OK());
  stats_.recoveries.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

bool EventStoreImpl::AcquireWriter() {
  MutexLock lk(&queue_mu_);
  if (stop_writer_) return false;
  ++backups_waiting_;
  while (writing_) queue_cv_.Wait(&queue_mu_);
  --backups_waiting_;
  writing_ = true;
  return true;
}

void EventStoreImpl::ReleaseWriter() {
  {
    MutexLock lk(&queue_mu_);
    writing_ = false;
  }
  queue_cv_.SignalAll();
}

Status EventStoreImpl::Resume() {
  RETURN_IF_ERROR(CheckOpen());
  if (options_.read_only) {
    return Status::FailedPrecondition("the store is open read-only");
  }
  if (!AcquireWriter())
    return Status::Unavailable("the event store is closing");
  Status s = Recover();
  ReleaseWriter();
  return s;
}

Status EventStoreImpl::WriteGroup(Group& g) {
  for (const auto& [id, head] : g.heads) {
    g.batch.Put(streams_cf_, id, EncodeStreamHead(head));
  }
  LogHead new_head{GlobalPosition(g.position), g.log_hash};
  g.batch.Put(meta_cf_, kMetaHeadKey, EncodeLogHead(new_head));
  const auto t1 = std::chrono::steady_clock::now();
  rocksdb::Status rs = db_->Write(write_options_, &g.batch);
  stats_.write_micros.fetch_add(MicrosSince(t1), std::memory_order_relaxed);
  if (!rs.ok()) {
    // Fail closed: the batch is atomic, so either all of it or none of it
    // is in the WAL, but we cannot tell which until the store recovers
    // (Recover). Refuse every further append until then.
    stats_.write_failures.fetch_add(1, std::memory_order_relaxed);
    SetFailure(FromRocks(
        rs, rs.IsNoSpace()
                ? "writing events (the disk is full: appends are refused "
                  "until space is freed)"
                : "writing events (appends are refused until the store "
                  "is reopened)"));
    logger_->error("{}", write_failure_.ToString());
    return write_failure_;
  }
  last_position_ = g.position;
  last_log_hash_ = g.log_hash;
  for (const auto& [id, head] : g.heads) stream_cache_.Put(id, head);
  {
    MutexLock lk(&commit_mu_);
    committed_head_ = new_head;
    committed_.store(g.position, std::memory_order_release);
  }
  commit_cv_.SignalAll();
  stats_.groups_committed.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

void EventStoreImpl::ProcessGroup(std::vector<Request>& requests) {
  std::vector<StatusOr<AppendResult>> results;
  results.reserve(requests.size());
  MaybeRecover();
  if (!write_failure_.ok()) {
    for (auto& r : requests) Complete(r, write_failure_);
    return;
  }

  const auto t0 = std::chrono::steady_clock::now();
  Group g;
  g.position = last_position_;
  g.log_hash = last_log_hash_;
  for (Request& r : requests) results.push_back(Decide(r, g));
  stats_.decide_micros.fetch_add(MicrosSince(t0), std::memory_order_relaxed);

  if (g.position != last_position_ && !WriteGroup(g).ok()) {
    for (auto& r : results) {
      if (r.ok()) r = write_failure_;
    }
  }
  for (const auto& r : results) {
    if (!r.ok()) {
      stats_.appends_rejected.fetch_add(1, std::memory_order_relaxed);
    } else if (r->deduplicated) {
      stats_.appends_deduplicated.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.appends_committed.fetch_add(1, std::memory_order_relaxed);
      stats_.events_committed.fetch_add(r->event_ids.size(),
                                        std::memory_order_relaxed);
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    Complete(requests[i], std::move(results[i]));
  }
}

void EventStoreImpl::Complete(Request& r, StatusOr<AppendResult> result) {
  // The writer thread serves every appender: a callback that throws must
  // not end it (nor the process).
  try {
    r.done(std::move(result));
  } catch (const std::exception& e) {
    logger_->error("an append's callback threw: {}", e.what());
  } catch (...) {
    logger_->error("an append's callback threw a non-standard exception");
  }
}

Status EventStoreImpl::Health() const {
  if (closing()) return Status::Unavailable("the event store is closed");
  if (options_.read_only) {
    return Status::FailedPrecondition("the store is open read-only");
  }
  if (write_failed_.load(std::memory_order_acquire)) {
    MutexLock lk(&failure_mu_);
    return failure_report_;
  }
  return Status::OK();
}

StoreStats EventStoreImpl::stats() const {
  StoreStats s;
  s.appends_committed =
      stats_.appends_committed.load(std::memory_order_relaxed);
  s.events_committed = stats_.events_committed.load(std::memory_order_relaxed);
  s.appends_deduplicated =
      stats_.appends_deduplicated.load(std::memory_order_relaxed);
  s.appends_rejected = stats_.appends_rejected.load(std::memory_order_relaxed);
  s.groups_committed = stats_.groups_committed.load(std::memory_order_relaxed);
  s.decide_micros = stats_.decide_micros.load(std::memory_order_relaxed);
  s.write_micros = stats_.write_micros.load(std::memory_order_relaxed);
  s.write_failures = stats_.write_failures.load(std::memory_order_relaxed);
  s.recoveries = stats_.recoveries.load(std::memory_order_relaxed);
  return s;
}

}  // namespace caseledger::internal

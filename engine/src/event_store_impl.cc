#include "engine/src/event_store_impl.h"

#include <pthread.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_buffer_manager.h>
#include <simdjson.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <future>
#include <limits>
#include <set>

#include "caseledger/storage_log.h"

namespace caseledger {

Status EventStore::Open(const Options& options, const std::string& path,
                        std::unique_ptr<EventStore>* store) {
  auto impl = std::make_unique<internal::EventStoreImpl>(options, path);
  RETURN_IF_ERROR(impl->Init());
  *store = std::move(impl);
  return Status::OK();
}

Status ForEachInStream(
    const EventStore& store, std::string_view stream_id, StreamVersion from,
    uint64_t through,
    const std::function<Status(const RecordedEvent&)>& visit) {
  constexpr size_t kPage = 512;
  uint64_t next = std::max<uint64_t>(from.value(), 1);
  for (;;) {
    ASSIGN_OR_RETURN(auto page, store.ReadStream(stream_id, StreamVersion(next),
                                                 Direction::kForward, kPage));
    for (const RecordedEvent& e : page) {
      if (through != 0 && e.version.value() > through) return Status::OK();
      RETURN_IF_ERROR(visit(e));
    }
    if (page.size() < kPage) return Status::OK();
    next = page.back().version.value() + 1;
  }
}

namespace internal {

Status OpenWithEnv(const Options& options, const std::string& path,
                   rocksdb::Env* env, std::unique_ptr<EventStore>* store) {
  auto impl = std::make_unique<EventStoreImpl>(options, path, env);
  RETURN_IF_ERROR(impl->Init());
  *store = std::move(impl);
  return Status::OK();
}

namespace {

constexpr size_t kMaxTypeLength = 128;
constexpr size_t kMaxFieldLength = 256;

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  std::string msg = std::string(context) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(msg));
  if (s.IsNotFound()) return Status::NotFound(std::move(msg));
  if (s.IsNoSpace()) return Status::NoSpace(std::move(msg));
  return Status::IOError(std::move(msg));
}

std::string_view ToView(const rocksdb::Slice& s) {
  return std::string_view(s.data(), s.size());
}

// Full JSON validation (grammar and UTF-8) with simdjson, an order of
// magnitude faster than a DOM parse; each thread keeps its parser's buffers.
bool IsJsonDocument(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text.data(), text.size(), true).get(doc) ==
         simdjson::SUCCESS;
}

// Per column-family tuning (engine/FORMAT.md, "Tuning").
rocksdb::ColumnFamilyOptions CfOptions(
    const std::shared_ptr<rocksdb::Cache>& cache, bool point_lookups,
    size_t write_buffer) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  // Index and filter in 4 KiB partitions, cached one by one. A whole filter
  // grows with its table (1.25 MB for a million ids) and outgrows a block
  // cache shard (64 MiB / 64 shards): it was then never cached, and every
  // point lookup read and checksummed all of it again (verify at a million
  // events spent 90% of its time there).
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.metadata_block_size = 4096;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  if (point_lookups) {
    // Whole-key Bloom filter: an append's "is this id new?" is a miss almost
    // always, and a miss then costs no disk read.
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    // And one over the memtable's keys (5% of its size), so such a miss does
    // not search the memtable's skip list either.
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    cf.memtable_whole_key_filtering = true;
  }
  t.format_version = 5;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  cf.level_compaction_dynamic_level_bytes = true;
  cf.compression = rocksdb::kLZ4Compression;
  cf.bottommost_compression = rocksdb::kZSTD;
  cf.write_buffer_size = write_buffer;
  return cf;
}

// For column families whose keys mostly arrive in ascending order (log
// positions, time-ordered UUIDv7 ids): one shared insert hint lets a memtable
// insert start where the previous one ended instead of searching the
// skiplist from the top.
rocksdb::ColumnFamilyOptions SequentialCfOptions(
    const std::shared_ptr<rocksdb::Cache>& cache, bool point_lookups,
    size_t write_buffer) {
  rocksdb::ColumnFamilyOptions cf =
      CfOptions(cache, point_lookups, write_buffer);
  cf.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewCappedPrefixTransform(0));
  return cf;
}

}  // namespace

// ---------------------------------------------------------------------------
// StreamHeadCache

const StreamHead* StreamHeadCache::Find(const std::string& id) {
  auto it = map_.find(id);
  if (it == map_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return &it->second->second;
}

void StreamHeadCache::Put(const std::string& id, const StreamHead& head) {
  if (capacity_ == 0) return;
  auto it = map_.find(id);
  if (it != map_.end()) {
    it->second->second = head;
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  order_.emplace_front(id, head);
  map_.emplace(id, order_.begin());
  if (map_.size() > capacity_) {
    map_.erase(order_.back().first);
    order_.pop_back();
  }
}

// ---------------------------------------------------------------------------
// Subscription

namespace {

class SubscriptionImpl final : public Subscription {
 public:
  SubscriptionImpl(const EventStoreImpl* store, uint64_t after)
      : store_(store), position_(after) {}

  StatusOr<std::vector<RecordedEvent>> Next(
      size_t max, std::chrono::milliseconds timeout) override {
    if (store_->closing()) return Status::Unavailable("store is closing");
    if (store_->committed_position().value() <= position_ &&
        !store_->WaitForCommitAfter(position_, timeout)) {
      if (store_->closing()) return Status::Unavailable("store is closing");
      return std::vector<RecordedEvent>{};
    }
    auto events = store_->ReadAll(GlobalPosition(position_), max);
    if (!events.ok()) return events.status();
    if (!events->empty()) {
      // ReadAll is bounded by the committed position and the log is
      // gapless, so the first event must follow the last one delivered.
      if (events->front().position.value() != position_ + 1) {
        return Status::Corruption(
            "subscription expected position " + std::to_string(position_ + 1) +
            " but read " + std::to_string(events->front().position.value()));
      }
      position_ = events->back().position.value();
    }
    return events;
  }

  GlobalPosition position() const override { return GlobalPosition(position_); }

 private:
  const EventStoreImpl* store_;
  uint64_t position_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Open and close

EventStoreImpl::EventStoreImpl(const Options& options, std::string path,
                               rocksdb::Env* env)
    : options_(options),
      path_(std::move(path)),
      env_(env),
      logger_(options.logger),
      stream_cache_(options.stream_cache_entries) {
  if (!logger_) {
    logger_ = std::make_shared<spdlog::logger>(
        "caseledger.engine", std::make_shared<spdlog::sinks::null_sink_mt>());
  }
  write_options_.sync = options_.sync;
}

EventStoreImpl::~EventStoreImpl() {
  Status s = Close();
  if (!s.ok()) logger_->error("closing the event store: {}", s.ToString());
}

Status EventStoreImpl::Init() {
  auto cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  rocksdb::DBOptions& dbo = dbo_;
  dbo.create_if_missing = options_.create_if_missing;
  dbo.create_missing_column_families = options_.create_if_missing;
  // Bounds the WAL: column families written rarely are flushed so that old
  // WAL files can go, which also bounds recovery time after a crash.
  dbo.max_total_wal_size = 256u << 20;
  dbo.keep_log_file_num = 5;
  dbo.max_background_jobs = 2;
  // One budget for all memtables, so memory stays bounded whatever the mix
  // of column families written (each alone could grow to twice its size).
  dbo.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options_.memtable_bytes);
  if (env_ != nullptr) dbo.env = env_;
  // No LOG file on the data volume (storage_log.h says why).
  dbo.info_log = RocksLogger(logger_);
  // The store recovers from a failed write itself (Recover: it must read
  // its head again), so RocksDB's own retries must not race it.
  dbo.listeners.push_back(ManualErrorRecovery());

  descs_ = {
      {rocksdb::kDefaultColumnFamilyName, CfOptions(cache, false, 4u << 20)},
      {kLogCf, SequentialCfOptions(cache, false, 64u << 20)},
      {kStreamIndexCf, CfOptions(cache, false, 16u << 20)},
      {kEventIdsCf, SequentialCfOptions(cache, true, 16u << 20)},
      {kStreamsCf, CfOptions(cache, true, 16u << 20)},
      {kMetaCf, CfOptions(cache, true, 1u << 20)},
  };
  rocksdb::Status rs = OpenDb(options_.read_only);
  std::string full_disk;
  if (!options_.read_only && rs.IsNoSpace()) {
    // A writable open writes (a new MANIFEST, a new WAL): on a full disk it
    // fails. Serve reads from a read-only open, which writes nothing, and
    // take appends once there is room (Recover reopens).
    full_disk = rs.ToString();
    rs = OpenDb(true);
    if (rs.ok()) read_only_for_space_ = true;
  }
  if (!rs.ok()) {
    std::string text = rs.ToString();
    if (text.find("lock") != std::string::npos) {
      return Status::FailedPrecondition(
          "the store at " + path_ + " is in use by another process: " + text);
    }
    if (text.find("does not exist") != std::string::npos) {
      return Status::NotFound("no store at " + path_ + ": " + text);
    }
    return FromRocks(rs, "opening " + path_);
  }

  RETURN_IF_ERROR(ReadStoredHead(&last_position_, &last_log_hash_));

  std::string value;
  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFormatKey, &value);
  if (rs.IsNotFound()) {
    if (last_position_ != 0) {
      return Status::Corruption("store holds events but no format marker");
    }
    if (!options_.read_only && !read_only_for_space_) {
      RETURN_IF_ERROR(WriteFormatMarker());
    }
  } else if (!rs.ok()) {
    return FromRocks(rs, "reading format marker");
  } else if (value.size() != 4 ||
             GetBe32(value.data()) != kStoreFormatVersion) {
    return Status::FailedPrecondition(
        "the store's format is not one this build reads (expected " +
        std::to_string(kStoreFormatVersion) + ")");
  }

  LogHead recorded;
  rs = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaHeadKey, &value);
  if (rs.ok()) {
    if (!DecodeLogHead(value, &recorded)) {
      return Status::Corruption("recorded log head does not decode");
    }
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "reading recorded head");
  }
  if (recorded.position.value() != last_position_ ||
      recorded.log_hash != last_log_hash_) {
    head_mismatch_ = "the recorded head is position " +
                     std::to_string(recorded.position.value()) +
                     " but the log ends at position " +
                     std::to_string(last_position_) +
                     " (events were removed or altered)";
    if (!options_.read_only) {
      return Status::Corruption(head_mismatch_ +
                                "; run `caseledger verify` to locate it");
    }
  }

  committed_head_ = LogHead{GlobalPosition(last_position_), last_log_hash_};
  committed_.store(last_position_, std::memory_order_release);
  logger_->info("opened event store {} at position {}{}", path_, last_position_,
                options_.read_only ? " (read-only)" : "");
  if (read_only_for_space_) {
    SetFailure(Status::NoSpace(
        "the disk was full when the store opened: reads are served, appends "
        "are refused until space is freed (" +
        full_disk + ")"));
    logger_->error("{}", write_failure_.ToString());
  }
  if (!options_.read_only) {
    writer_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "cl-writer");
      WriterLoop();
    });
  }
  return Status::OK();
}

Status EventStoreImpl::WriteFormatMarker() {
  std::string v;
  PutBe32(&v, kStoreFormatVersion);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status rs = db_->Put(wo, meta_cf_, kMetaFormatKey, v);
  return rs.ok() ? Status::OK() : FromRocks(rs, "writing format marker");
}

rocksdb::Status EventStoreImpl::OpenDb(bool read_only) {
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status rs =
      read_only
          ? rocksdb::DB::OpenForReadOnly(dbo_, path_, descs_, &handles, &raw)
          : rocksdb::DB::Open(dbo_, path_, descs_, &handles, &raw);
  if (!rs.ok()) return rs;
  db_.reset(raw);
  handles_ = std::move(handles);
  log_cf_ = handles_[1];
  stream_index_cf_ = handles_[2];
  event_ids_cf_ = handles_[3];
  streams_cf_ = handles_[4];
  meta_cf_ = handles_[5];
  return rs;
}

rocksdb::Status EventStoreImpl::CloseDb() {
  rocksdb::Status result;
  if (!db_) return result;
  for (auto* h : handles_) {
    rocksdb::Status rs = db_->DestroyColumnFamilyHandle(h);
    if (!rs.ok() && result.ok()) result = rs;
  }
  handles_.clear();
  rocksdb::Status rs = db_->Close();
  if (!rs.ok() && result.ok()) result = rs;
  db_.reset();
  return result;
}

Status EventStoreImpl::ReadStoredHead(uint64_t* position, Hash* hash) const {
  // The log's last record, found by one seek, not a scan.
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), log_cf_));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), "reading log head");
  *position = 0;
  *hash = Hash{};
  if (it->Valid()) {
    EventView v;
    RETURN_IF_ERROR(DecodeRecord(ToView(it->value()), &v));
    *position = v.position;
    *hash = v.log_hash;
  }
  return Status::OK();
}

Status EventStoreImpl::Close() {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  closing_.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(queue_mu_);
    stop_writer_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();  // drains every queued append
  { std::lock_guard<std::mutex> lk(commit_mu_); }
  commit_cv_.notify_all();  // wake subscribers and waiters

  Status result;
  std::unique_lock<std::shared_mutex> db_lock(db_mu_);  // readers finish
  if (db_) {
    if (!options_.read_only && !read_only_for_space_) {
      // Flush so that the next open has no WAL to replay.
      rocksdb::FlushOptions fo;
      rocksdb::Status rs = db_->Flush(fo, handles_);
      if (!rs.ok()) result = FromRocks(rs, "flushing at close");
    }
    rocksdb::Status rs = CloseDb();
    if (!rs.ok() && result.ok()) result = FromRocks(rs, "closing");
  }
  return result;
}

Status EventStoreImpl::CheckOpen() const {
  if (closing()) return Status::Unavailable("the event store is closed");
  return Status::OK();
}

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
    std::unique_lock<std::mutex> lk(queue_mu_);
    if (!stop_writer_) {
      queue_.push_back(std::move(*r));
      lk.unlock();
      queue_cv_.notify_all();
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
    std::unique_lock<std::mutex> lk(queue_mu_);
    if (stop_writer_) {
      return Status::Unavailable("the event store is closing");
    }
    if (writing_ || backups_waiting_ > 0 || !queue_.empty()) {
      // Someone is writing: join the queue; the writer thread takes it next,
      // together with everything else that waits (group commit).
      queue_.push_back(std::move(*r));
      lk.unlock();
      queue_cv_.notify_all();
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
    std::lock_guard<std::mutex> lk(queue_mu_);
    writing_ = false;
    // Only if someone waits for the store to be free: the writer thread for
    // what queued meanwhile (or to stop), or a backup. Waking the idle
    // writer for nothing costs a lone appender a futex call and a context
    // switch per append.
    wake = !queue_.empty() || backups_waiting_ > 0 || stop_writer_;
  }
  if (wake) queue_cv_.notify_all();
  return future.get();
}

void EventStoreImpl::WriterLoop() {
  for (;;) {
    std::vector<Request> group;
    {
      std::unique_lock<std::mutex> lk(queue_mu_);
      auto ready = [this] {
        return !writing_ && backups_waiting_ == 0 &&
               (stop_writer_ || !queue_.empty());
      };
      // Wakes each second too: after a failed write (which a blocking
      // Append may have met on its own thread) it sees whether the store
      // can resume, so readiness comes back without waiting for an append.
      if (!queue_cv_.wait_for(lk, std::chrono::seconds(1), ready)) {
        if (!write_failed_.load(std::memory_order_acquire) || writing_ ||
            backups_waiting_ > 0) {
          continue;
        }
        writing_ = true;
        lk.unlock();
        MaybeRecover();
        lk.lock();
        writing_ = false;
        lk.unlock();
        queue_cv_.notify_all();
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
      std::lock_guard<std::mutex> lk(queue_mu_);
      writing_ = false;
    }
    queue_cv_.notify_all();  // a backup may be waiting for the writer state
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

// What one group of appends will write.
struct EventStoreImpl::Group {
  rocksdb::WriteBatch batch;
  uint64_t position = 0;  // last position assigned
  Hash log_hash{};
  std::unordered_map<std::string, StreamHead> heads;  // changed this group
  std::unordered_map<std::string, size_t> ids;        // id key -> values
  std::vector<std::string> values;                    // records this group
};

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

  const int64_t recorded_at =
      (options_.clock ? options_.clock() : NowUtc()).value();
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
  std::lock_guard<std::mutex> lk(failure_mu_);
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
    std::unique_lock<std::shared_mutex> lk(db_mu_);
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
      std::lock_guard<std::mutex> lk(commit_mu_);
      committed_head_ = LogHead{GlobalPosition(position), hash};
      committed_.store(position, std::memory_order_release);
    }
    commit_cv_.notify_all();
  }
  logger_->warn("the store accepts appends again (log at position {})",
                position);
  SetFailure(Status::OK());
  stats_.recoveries.fetch_add(1, std::memory_order_relaxed);
  return Status::OK();
}

bool EventStoreImpl::AcquireWriter() {
  std::unique_lock<std::mutex> lk(queue_mu_);
  if (stop_writer_) return false;
  ++backups_waiting_;
  queue_cv_.wait(lk, [this] { return !writing_; });
  --backups_waiting_;
  writing_ = true;
  return true;
}

void EventStoreImpl::ReleaseWriter() {
  {
    std::lock_guard<std::mutex> lk(queue_mu_);
    writing_ = false;
  }
  queue_cv_.notify_all();
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

void EventStoreImpl::ProcessGroup(std::vector<Request>& requests) {
  std::vector<StatusOr<AppendResult>> results;
  results.reserve(requests.size());
  MaybeRecover();
  if (!write_failure_.ok()) {
    for (auto& r : requests) Complete(r, write_failure_);
    return;
  }

  using Clock = std::chrono::steady_clock;
  auto micros_since = [](Clock::time_point t0) {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
            .count());
  };
  const auto t0 = Clock::now();
  Group g;
  g.position = last_position_;
  g.log_hash = last_log_hash_;
  for (Request& r : requests) results.push_back(Decide(r, g));
  stats_.decide_micros.fetch_add(micros_since(t0), std::memory_order_relaxed);

  if (g.position != last_position_) {
    for (const auto& [id, head] : g.heads) {
      g.batch.Put(streams_cf_, id, EncodeStreamHead(head));
    }
    LogHead new_head{GlobalPosition(g.position), g.log_hash};
    g.batch.Put(meta_cf_, kMetaHeadKey, EncodeLogHead(new_head));
    const auto t1 = Clock::now();
    rocksdb::Status rs = db_->Write(write_options_, &g.batch);
    stats_.write_micros.fetch_add(micros_since(t1), std::memory_order_relaxed);
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
      for (auto& r : results) {
        if (r.ok()) r = write_failure_;
      }
    } else {
      last_position_ = g.position;
      last_log_hash_ = g.log_hash;
      for (const auto& [id, head] : g.heads) stream_cache_.Put(id, head);
      {
        std::lock_guard<std::mutex> lk(commit_mu_);
        committed_head_ = new_head;
        committed_.store(g.position, std::memory_order_release);
      }
      commit_cv_.notify_all();
      stats_.groups_committed.fetch_add(1, std::memory_order_relaxed);
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
    std::lock_guard<std::mutex> lk(failure_mu_);
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

// ---------------------------------------------------------------------------
// Reads

bool EventStoreImpl::WaitForCommitAfter(
    uint64_t after, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lk(commit_mu_);
  return commit_cv_.wait_for(lk, timeout, [&] {
    return committed_.load(std::memory_order_acquire) > after || closing();
  }) && committed_.load(std::memory_order_acquire) > after;
}

bool EventStoreImpl::WaitForPosition(GlobalPosition position,
                                     std::chrono::milliseconds timeout) const {
  if (position.value() == 0) return true;
  return WaitForCommitAfter(position.value() - 1, timeout);
}

LogHead EventStoreImpl::Head() const {
  std::lock_guard<std::mutex> lk(commit_mu_);
  return committed_head_;
}

std::unique_ptr<Subscription> EventStoreImpl::Subscribe(
    GlobalPosition after) const {
  return std::make_unique<SubscriptionImpl>(this, after.value());
}

StatusOr<RecordedEvent> EventStoreImpl::ReadAtPosition(
    uint64_t position) const {
  std::string value;
  rocksdb::Status rs =
      db_->Get(rocksdb::ReadOptions(), log_cf_, LogKey(position), &value);
  if (!rs.ok()) {
    return FromRocks(rs, "reading position " + std::to_string(position));
  }
  EventView v;
  RETURN_IF_ERROR(DecodeRecord(value, &v));
  return ToRecordedEvent(v);
}

StatusOr<std::vector<RecordedEvent>> EventStoreImpl::ReadStream(
    std::string_view stream_id, StreamVersion from, Direction direction,
    size_t limit) const {
  RETURN_IF_ERROR(CheckOpen());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!db_) return Status::Unavailable("the event store is reopening");
  RETURN_IF_ERROR(ValidateStreamId(stream_id));
  const uint64_t committed = committed_.load(std::memory_order_acquire);
  std::string lower = StreamIndexKey(stream_id, 0);
  std::string upper =
      StreamIndexKey(stream_id, std::numeric_limits<uint64_t>::max());
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, stream_index_cf_));

  // Gather the positions from the index, then fetch the records in one
  // MultiGet.
  std::vector<std::string> keys;
  std::string start = StreamIndexKey(stream_id, from.value());
  if (direction == Direction::kForward) {
    for (it->Seek(start); it->Valid() && keys.size() < limit; it->Next()) {
      uint64_t pos = GetBe64(it->value().data());
      if (pos > committed) break;
      keys.push_back(LogKey(pos));
    }
  } else {
    for (it->SeekForPrev(start); it->Valid() && keys.size() < limit;
         it->Prev()) {
      uint64_t pos = GetBe64(it->value().data());
      if (pos > committed) continue;  // not yet published
      keys.push_back(LogKey(pos));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading case index");

  std::vector<rocksdb::Slice> key_slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db_->MultiGet(rocksdb::ReadOptions(), log_cf_, keys.size(), key_slices.data(),
                values.data(), statuses.data());
  std::vector<RecordedEvent> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!statuses[i].ok()) {
      return FromRocks(statuses[i], "reading an indexed event of case " +
                                        std::string(stream_id));
    }
    EventView v;
    RETURN_IF_ERROR(DecodeRecord(ToView(values[i]), &v));
    out.push_back(ToRecordedEvent(v));
  }
  return out;
}

StatusOr<std::vector<RecordedEvent>> EventStoreImpl::ReadAll(
    GlobalPosition after, size_t limit) const {
  RETURN_IF_ERROR(CheckOpen());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!db_) return Status::Unavailable("the event store is reopening");
  const uint64_t committed = committed_.load(std::memory_order_acquire);
  std::vector<RecordedEvent> out;
  if (after.value() >= committed || limit == 0) return out;
  std::string lower = LogKey(after.value() + 1);
  std::string upper = LogKey(committed + 1);
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_lower_bound = &lower_s;
  ro.iterate_upper_bound = &upper_s;
  // A pass over the log (a projection catching up, a rebuild) reads each
  // block once: keep it out of the block cache, which holds what is read
  // again (case indexes, heads, filters).
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  out.reserve(std::min<uint64_t>(limit, committed - after.value()));
  for (it->Seek(lower_s); it->Valid() && out.size() < limit; it->Next()) {
    EventView v;
    RETURN_IF_ERROR(DecodeRecord(ToView(it->value()), &v));
    if (v.position != GetBe64(it->key().data())) {
      return Status::Corruption("record at position " +
                                std::to_string(GetBe64(it->key().data())) +
                                " says it is at " + std::to_string(v.position));
    }
    out.push_back(ToRecordedEvent(v));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the log");
  return out;
}

StatusOr<RecordedEvent> EventStoreImpl::ReadEvent(const EventId& id) const {
  RETURN_IF_ERROR(CheckOpen());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!db_) return Status::Unavailable("the event store is reopening");
  std::string pos;
  rocksdb::Status rs =
      db_->Get(rocksdb::ReadOptions(), event_ids_cf_, EventIdKey(id), &pos);
  if (rs.IsNotFound()) {
    return Status::NotFound("no event " + id.ToString());
  }
  if (!rs.ok()) return FromRocks(rs, "reading event-id index");
  if (pos.size() != 8) return Status::Corruption("event-id index entry");
  uint64_t position = GetBe64(pos.data());
  if (position > committed_.load(std::memory_order_acquire)) {
    return Status::NotFound("no event " + id.ToString());
  }
  return ReadAtPosition(position);
}

StatusOr<StreamVersion> EventStoreImpl::GetStreamVersion(
    std::string_view stream_id) const {
  RETURN_IF_ERROR(CheckOpen());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!db_) return Status::Unavailable("the event store is reopening");
  RETURN_IF_ERROR(ValidateStreamId(stream_id));
  // The case's head entry, written in the same batch as its events: one
  // point read (the authentication path asks on every request that follows
  // a write).
  std::string value;
  rocksdb::Status rs =
      db_->Get(rocksdb::ReadOptions(), streams_cf_,
               rocksdb::Slice(stream_id.data(), stream_id.size()), &value);
  if (rs.IsNotFound()) return StreamVersion(0);
  if (!rs.ok()) {
    return FromRocks(rs, "reading head of case " + std::string(stream_id));
  }
  StreamHead head;
  if (!DecodeStreamHead(value, &head)) {
    return Status::Corruption("head of case " + std::string(stream_id) +
                              " does not decode");
  }
  return StreamVersion(head.version);
}

// ---------------------------------------------------------------------------
// Verify

StatusOr<VerifyReport> EventStoreImpl::Verify(
    std::optional<std::string> stream_id) const {
  RETURN_IF_ERROR(CheckOpen());
  std::shared_lock<std::shared_mutex> db_lock(db_mu_);
  if (!db_) return Status::Unavailable("the event store is reopening");
  if (stream_id) {
    RETURN_IF_ERROR(ValidateStreamId(*stream_id));
    return VerifyStream(*stream_id);
  }
  return VerifyLog();
}

namespace {

// Holds a RocksDB snapshot for the duration of a verify, so that every column
// family is read at the same instant even while appends continue.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db)
      : db_(db), snap_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snap_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;
  rocksdb::ReadOptions Read() const {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap_;
    return ro;
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

VerifyReport Broken(VerifyReport report, uint64_t position,
                    std::string_view stream_id, uint64_t version,
                    std::string reason) {
  report.ok = false;
  report.first_broken =
      VerifyReport::Break{GlobalPosition(position), std::string(stream_id),
                          StreamVersion(version), std::move(reason)};
  return report;
}

}  // namespace

StatusOr<VerifyReport> EventStoreImpl::VerifyLog() const {
  VerifyReport report;
  if (!head_mismatch_.empty()) {
    return Broken(report, last_position_ + 1, "", 0, head_mismatch_);
  }
  ScopedSnapshot snap(db_.get());
  rocksdb::ReadOptions ro = snap.Read();
  std::unordered_map<std::string, StreamHead> seen;
  uint64_t expected = 1;
  Hash log_hash{};
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  std::string indexed;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != 8) {
      return Broken(report, expected, "", 0, "a log key is not 8 bytes long");
    }
    uint64_t pos = GetBe64(it->key().data());
    if (pos != expected) {
      return Broken(report, expected, "", 0,
                    "the event at position " + std::to_string(expected) +
                        " is missing (the next stored is at " +
                        std::to_string(pos) + ")");
    }
    EventView v;
    Status ds = DecodeRecord(ToView(it->value()), &v);
    if (!ds.ok()) {
      return Broken(report, pos, "", 0,
                    "the record does not decode: " + ds.message());
    }
    if (v.position != pos) {
      return Broken(report, pos, v.stream_id, v.version,
                    "the record says position " + std::to_string(v.position));
    }
    StreamHead& sh = seen[std::string(v.stream_id)];
    if (v.version != sh.version + 1) {
      return Broken(report, pos, v.stream_id, v.version,
                    "version " + std::to_string(v.version) +
                        " follows version " + std::to_string(sh.version) +
                        " of the case");
    }
    Hash case_hash = ChainCaseHash(sh.hash, v.canonical);
    if (case_hash != v.case_hash) {
      return Broken(report, pos, v.stream_id, v.version,
                    "the case hash does not match the event's bytes or the "
                    "case's previous event");
    }
    Hash next_log = ChainLogHash(log_hash, case_hash);
    if (next_log != v.log_hash) {
      return Broken(report, pos, v.stream_id, v.version,
                    "the log hash does not chain from the previous event");
    }
    rocksdb::Status rs = db_->Get(
        ro, stream_index_cf_, StreamIndexKey(v.stream_id, v.version), &indexed);
    if (!rs.ok() || indexed.size() != 8 || GetBe64(indexed.data()) != pos) {
      return Broken(report, pos, v.stream_id, v.version,
                    "the case index does not point at this event");
    }
    rs = db_->Get(ro, event_ids_cf_, EventIdKey(v.event_id), &indexed);
    if (!rs.ok() || indexed.size() != 8 || GetBe64(indexed.data()) != pos) {
      return Broken(report, pos, v.stream_id, v.version,
                    "the event-id index does not point at this event");
    }
    sh = StreamHead{v.version, pos, case_hash};
    log_hash = next_log;
    ++expected;
    ++report.events_checked;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "verifying the log");
  const uint64_t last = expected - 1;

  std::string value;
  LogHead recorded;
  rocksdb::Status rs = db_->Get(ro, meta_cf_, kMetaHeadKey, &value);
  if (rs.ok() && !DecodeLogHead(value, &recorded)) {
    return Broken(report, last, "", 0, "the recorded head does not decode");
  }
  if (recorded.position.value() != last || recorded.log_hash != log_hash) {
    return Broken(report, last + 1, "", 0,
                  "the recorded head is position " +
                      std::to_string(recorded.position.value()) +
                      " but the log ends at position " + std::to_string(last));
  }

  // Every case head matches its chain, and every case has a head.
  size_t heads = 0;
  std::unique_ptr<rocksdb::Iterator> hit(db_->NewIterator(ro, streams_cf_));
  for (hit->SeekToFirst(); hit->Valid(); hit->Next()) {
    std::string id(ToView(hit->key()));
    StreamHead head;
    auto s = seen.find(id);
    if (!DecodeStreamHead(ToView(hit->value()), &head) || s == seen.end() ||
        head.version != s->second.version ||
        head.position != s->second.position || head.hash != s->second.hash) {
      return Broken(report, s == seen.end() ? 0 : s->second.position, id,
                    s == seen.end() ? 0 : s->second.version,
                    "the recorded head of the case (version " +
                        std::to_string(head.version) +
                        ") does not match its events");
    }
    ++heads;
  }
  if (!hit->status().ok()) return FromRocks(hit->status(), "verifying heads");
  if (heads != seen.size()) {
    return Broken(report, last, "", 0,
                  std::to_string(seen.size() - heads) +
                      " case(s) have events but no recorded head");
  }
  // No index entry points at nothing.
  uint64_t index_entries = 0;
  std::unique_ptr<rocksdb::Iterator> iit(
      db_->NewIterator(ro, stream_index_cf_));
  for (iit->SeekToFirst(); iit->Valid(); iit->Next()) ++index_entries;
  if (!iit->status().ok()) return FromRocks(iit->status(), "verifying index");
  if (index_entries != report.events_checked) {
    return Broken(report, last, "", 0,
                  "the case index holds " + std::to_string(index_entries) +
                      " entries for " + std::to_string(report.events_checked) +
                      " events");
  }
  report.streams_checked = seen.size();
  return report;
}

StatusOr<VerifyReport> EventStoreImpl::VerifyStream(
    const std::string& stream_id) const {
  VerifyReport report;
  ScopedSnapshot snap(db_.get());
  rocksdb::ReadOptions ro = snap.Read();
  std::string lower = StreamIndexKey(stream_id, 0);
  std::string upper =
      StreamIndexKey(stream_id, std::numeric_limits<uint64_t>::max());
  rocksdb::Slice lower_s(lower), upper_s(upper);
  rocksdb::ReadOptions iro = ro;
  iro.iterate_lower_bound = &lower_s;
  iro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(iro, stream_index_cf_));

  StreamHead prev;
  std::string value, prev_value;
  for (it->Seek(lower_s); it->Valid(); it->Next()) {
    uint64_t version = GetBe64(it->key().data() + it->key().size() - 8);
    if (it->value().size() != 8) {
      return Broken(report, 0, stream_id, version, "index entry is malformed");
    }
    uint64_t pos = GetBe64(it->value().data());
    if (version != prev.version + 1) {
      return Broken(report, pos, stream_id, prev.version + 1,
                    "version " + std::to_string(prev.version + 1) +
                        " of the case is missing");
    }
    rocksdb::Status rs = db_->Get(ro, log_cf_, LogKey(pos), &value);
    if (!rs.ok()) {
      return Broken(report, pos, stream_id, version,
                    "the event at position " + std::to_string(pos) +
                        " is missing from the log");
    }
    EventView v;
    Status ds = DecodeRecord(value, &v);
    if (!ds.ok()) {
      return Broken(report, pos, stream_id, version,
                    "the record does not decode: " + ds.message());
    }
    if (v.stream_id != stream_id || v.version != version || v.position != pos) {
      return Broken(report, pos, stream_id, version,
                    "the record's case, version or position is not the "
                    "indexed one");
    }
    Hash case_hash = ChainCaseHash(prev.hash, v.canonical);
    if (case_hash != v.case_hash) {
      return Broken(report, pos, stream_id, version,
                    "the case hash does not match the event's bytes or the "
                    "case's previous event");
    }
    Hash prev_log{};
    if (pos > 1) {
      EventView pv;
      rs = db_->Get(ro, log_cf_, LogKey(pos - 1), &prev_value);
      if (!rs.ok() || !DecodeRecord(prev_value, &pv).ok()) {
        return Broken(report, pos - 1, "", 0,
                      "the log event before this case's event is missing or "
                      "unreadable");
      }
      prev_log = pv.log_hash;
    }
    if (ChainLogHash(prev_log, case_hash) != v.log_hash) {
      return Broken(report, pos, stream_id, version,
                    "the log hash does not chain from the previous event");
    }
    prev = StreamHead{version, pos, case_hash};
    ++report.events_checked;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "verifying the case");

  rocksdb::Status rs = db_->Get(ro, streams_cf_, stream_id, &value);
  if (rs.IsNotFound() && prev.version == 0) {
    return Status::NotFound("no case " + stream_id);
  }
  StreamHead head;
  if (!rs.ok() || !DecodeStreamHead(value, &head) ||
      head.version != prev.version || head.position != prev.position ||
      head.hash != prev.hash) {
    return Broken(report, prev.position, stream_id, prev.version + 1,
                  "the recorded head of the case (version " +
                      std::to_string(head.version) +
                      ") does not match its last event (version " +
                      std::to_string(prev.version) + ")");
  }
  report.streams_checked = 1;
  return report;
}

}  // namespace internal
}  // namespace caseledger

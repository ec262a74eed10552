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

#include "caseledger/storage.h"
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
  // cache shard (64 MiB / 64 shards): it would then never be cached, and
  // every point lookup would read and checksum all of it again.
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.partition_filters = true;
  t.metadata_block_size = 4096;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  if (point_lookups) {
    // Whole-key Bloom filter: an append's "is this id new?" is a miss almost
    // always, and a miss then costs no disk read.
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    // And one over the memtable's keys, so such a miss does not search the
    // memtable's skip list either.
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
  // No LOG file on the data volume (storage.h says why).
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

  {
    MutexLock lk(&commit_mu_);
    committed_head_ = LogHead{GlobalPosition(last_position_), last_log_hash_};
    committed_.store(last_position_, std::memory_order_release);
  }
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
  MutexLock close_lock(&close_mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  closing_.store(true, std::memory_order_release);
  {
    MutexLock lk(&queue_mu_);
    stop_writer_ = true;
  }
  queue_cv_.SignalAll();
  if (writer_.joinable()) writer_.join();  // drains every queued append
  { MutexLock lk(&commit_mu_); }
  commit_cv_.SignalAll();  // wake subscribers and waiters

  Status result;
  WriterLock db_lock(&db_mu_);  // readers finish
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

}  // namespace internal
}  // namespace caseledger

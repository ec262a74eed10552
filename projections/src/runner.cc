#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>
#include <spdlog/sinks/null_sink.h>

#include <filesystem>

#include "caseledger/storage.h"
#include "projections/src/open_with_env.h"
#include "projections/src/read_models_impl.h"

namespace caseledger::projections {
namespace internal {

ReadModelsImpl::ReadModelsImpl(
    const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string key)
    : store_(store),
      catalog_(std::move(catalog)),
      logger_(std::move(logger)),
      key_(std::move(key)),
      hmac_(key_.empty() ? nullptr : std::make_unique<HmacSha256>(key_)) {
  if (!logger_) {
    logger_ = std::make_shared<spdlog::logger>(
        "caseledger.projections",
        std::make_shared<spdlog::sinks::null_sink_mt>());
  }
}

ReadModelsImpl::~ReadModelsImpl() {
  Stop();
  if (!db_) return;
  for (auto& [name, h] : handles_) (void)db_->DestroyColumnFamilyHandle(h);
  (void)db_->Close();
}

rocksdb::ColumnFamilyOptions ReadModelsImpl::CfOptions(
    std::string_view name) const {
  const bool scanned_only =
      name.starts_with("case_index_g") || name.starts_with("learning_feed_g");
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = block_cache_;
  t.cache_index_and_filter_blocks = true;
  if (!scanned_only) {
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
    t.partition_filters = true;
    // A Bloom filter over each memtable's keys too: many point reads here
    // miss (a feed record's withdrawn mark, a case not stored yet), and a
    // miss would otherwise search the memtable's skip list. (Measured
    // only together with other changes, bench/RESULTS.md.)
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    cf.memtable_whole_key_filtering = true;
  }
  // Partitioned, so a large table's index and filter are cached in small
  // pieces (engine/src/event_store_impl.cc, CfOptions, says why).
  t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  t.metadata_block_size = 4096;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_top_level_index_and_filter = true;
  t.format_version = 5;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  cf.write_buffer_size = 16u << 20;
  cf.max_write_buffer_number = 2;
  cf.compression = rocksdb::kNoCompression;
  cf.bottommost_compression = rocksdb::kLZ4Compression;
  cf.level_compaction_dynamic_level_bytes = true;
  return cf;
}

Status ReadModelsImpl::Init(const std::string& dir, rocksdb::Env* env) {
  dir_ = dir;
  rocksdb::DBOptions& dbo = dbo_;
  if (env != nullptr) dbo.env = env;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(kMemtableBudget);
  dbo.max_background_jobs = 2;
  // No LOG file on the data volume, and recovery from a full disk is the
  // runner's (caseledger/storage.h says why).
  dbo.info_log = RocksLogger(logger_);
  dbo.listeners.push_back(ManualErrorRecovery());
  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &names);
  if (!ls.ok()) names = {rocksdb::kDefaultColumnFamilyName};
  rocksdb::Status opened = OpenDb(names, /*read_only=*/false);
  if (opened.IsNoSpace()) {
    // The disk is full: serve the models as they are from a read-only
    // open (which writes nothing); the runner opens them writable once
    // there is room (ReopenWritable).
    if (OpenDb(names, /*read_only=*/true).ok()) {
      read_only_for_space_ = true;
      opened = rocksdb::Status::OK();
    }
  }
  RETURN_IF_ERROR(FromRocks(opened, "opening read models at " + dir));

  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kGenerationKey, &value);
  if (s.ok()) {
    generation_ = std::stoull(value);
  } else if (s.IsNotFound()) {
    generation_ = 1;
    RETURN_IF_ERROR(FromRocks(
        db_->Put(rocksdb::WriteOptions(), kGenerationKey, "1"), "generation"));
  } else {
    return FromRocks(s, "reading generation");
  }
  RETURN_IF_ERROR(EnsureGeneration(generation_));
  s = db_->Get(rocksdb::ReadOptions(), CheckpointKey(generation_), &value);
  if (s.ok()) position_.store(FromBe64(value));
  s = db_->Get(rocksdb::ReadOptions(), FeedSeqKey(generation_), &value);
  if (s.ok()) feed_seq_ = FromBe64(value);
  if (read_only_for_space_) {
    // The shape is checked once they open writable (ReopenWritable).
    logger_->error(
        "read models: the disk is full; serving them as they are until "
        "there is room to apply the log");
    MutexLock lk(&health_mu_);
    error_ = kDiskFull;
    return Status::OK();
  }
  return CheckShape();
}

Status ReadModelsImpl::CheckShape() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kShapeKey, &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading the shape");
  if (!s.ok() || value != kShape) {
    if (position_.load() > 0) {
      logger_->warn(
          "read models were built in shape {} (now {}): rebuilding from "
          "the log",
          s.ok() ? value : std::string("1"), kShape);
      RETURN_IF_ERROR(Rebuild(RebuildOptions{}));
    }
    RETURN_IF_ERROR(FromRocks(
        db_->Put(rocksdb::WriteOptions(), kShapeKey, kShape), "shape"));
  }
  return Status::OK();
}

void ReadModelsImpl::Start() {
  MutexLock lk(&run_mu_);
  if (runner_.joinable()) return;
  stop_.store(false);
  runner_ = std::thread([this] { Run(); });
}

void ReadModelsImpl::Stop() {
  MutexLock lk(&run_mu_);
  stop_.store(true);
  if (runner_.joinable()) runner_.join();
}

Status ReadModelsImpl::CatchUp() {
  for (;;) {
    auto events = store_.ReadAll(GlobalPosition(position_.load()), kBatch);
    if (!events.ok()) return events.status();
    if (events->empty()) return Status::OK();
    FoldedBatch b;
    b.events = std::move(*events);
    folder_.Fold(&b);
    RETURN_IF_ERROR(Apply(b, generation_));
  }
}

ProjectionHealth ReadModelsImpl::Health() const {
  ProjectionHealth h;
  h.position = position_.load();
  uint64_t committed = store_.committed_position().value();
  h.lag = committed > h.position ? committed - h.position : 0;
  MutexLock lk(&health_mu_);
  h.healthy = error_.empty();
  h.error = error_;
  return h;
}

bool ReadModelsImpl::WaitFor(GlobalPosition position,
                             std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lk(&health_mu_);
  while (position_.load() < position.value() && error_.empty()) {
    if (!progress_cv_.WaitUntil(&health_mu_, deadline)) break;
  }
  return position_.load() >= position.value();
}

Status ReadModelsImpl::EnsureGeneration(uint64_t gen, bool make_current) {
  std::vector<std::string> missing;
  for (const std::string& name : GenerationCfs(gen)) {
    if (!handles_.count(name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    descs.reserve(missing.size());
    for (const std::string& name : missing) {
      descs.emplace_back(name, CfOptions(name));
    }
    std::vector<rocksdb::ColumnFamilyHandle*> made;
    const rocksdb::Status s = db_->CreateColumnFamilies(descs, &made);
    // Those made before a failure are kept, so a retry or the next
    // rebuild's DropGeneration finds them.
    for (rocksdb::ColumnFamilyHandle* h : made) handles_[h->GetName()] = h;
    RETURN_IF_ERROR(FromRocks(s, "creating read-model column families"));
  }
  if (make_current) {
    WriterLock lk(&gen_mu_);
    state_cf_ = handles_.at(StateCf(gen));
    index_cf_ = handles_.at(IndexCf(gen));
    feed_cf_ = handles_.at(FeedCf(gen));
    stats_cf_ = handles_.at(StatsCf(gen));
  }
  return Status::OK();
}

Status ReadModelsImpl::DropGeneration(uint64_t gen) {
  std::vector<rocksdb::ColumnFamilyHandle*> drop;
  for (const std::string& name : GenerationCfs(gen)) {
    auto it = handles_.find(name);
    if (it != handles_.end()) drop.push_back(it->second);
  }
  if (!drop.empty()) {
    RETURN_IF_ERROR(FromRocks(db_->DropColumnFamilies(drop),
                              "dropping read-model column families"));
    for (rocksdb::ColumnFamilyHandle* h : drop) {
      handles_.erase(h->GetName());
      (void)db_->DestroyColumnFamilyHandle(h);
    }
  }
  (void)db_->Delete(rocksdb::WriteOptions(), CheckpointKey(gen));
  (void)db_->Delete(rocksdb::WriteOptions(), FeedSeqKey(gen));
  return Status::OK();
}

Status ReadModelsImpl::Fail(const std::string& why) {
  logger_->error("projection stopped: {}", why);
  {
    MutexLock lk(&health_mu_);
    error_ = why;
  }
  progress_cv_.SignalAll();
  return Status::FailedPrecondition(why);
}

rocksdb::Status ReadModelsImpl::OpenDb(const std::vector<std::string>& names,
                                       bool read_only) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  descs.reserve(names.size());
  for (const auto& n : names) descs.emplace_back(n, CfOptions(n));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      read_only
          ? rocksdb::DB::OpenForReadOnly(dbo_, dir_, descs, &handles, &raw)
          : rocksdb::DB::Open(dbo_, dir_, descs, &handles, &raw);
  if (!s.ok()) return s;
  db_.reset(raw);
  handles_.clear();
  for (size_t i = 0; i < names.size(); ++i) handles_[names[i]] = handles[i];
  return s;
}

bool ReadModelsImpl::ReopenWritable() {
  std::vector<std::string> names;
  for (const auto& [name, h] : handles_) names.push_back(name);
  while (!stop_.load()) {
    {
      WriterLock lk(&gen_mu_);
      if (db_) {
        for (auto& [name, h] : handles_) {
          (void)db_->DestroyColumnFamilyHandle(h);
        }
        handles_.clear();
        (void)db_->Close();
        db_.reset();
      }
      rocksdb::Status s = OpenDb(names, /*read_only=*/false);
      if (s.ok()) read_only_for_space_ = false;
      // Readers never find no database: read-only again, retried (with
      // them held off) for as long as that fails.
      while (!s.ok() && !(s = OpenDb(names, /*read_only=*/true)).ok() &&
             !stop_.load()) {
        logger_->error("read models: cannot reopen, even read-only: {}",
                       s.ToString());
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      if (!s.ok()) return false;  // stopped, with no database
      state_cf_ = handles_.at(StateCf(generation_));
      index_cf_ = handles_.at(IndexCf(generation_));
      feed_cf_ = handles_.at(FeedCf(generation_));
      stats_cf_ = handles_.at(StatsCf(generation_));
    }
    if (!read_only_for_space_) {
      if (Status shape = CheckShape(); !shape.ok()) {
        (void)Fail("checking the read models' shape: " + shape.ToString());
        return false;
      }
      logger_->warn("read models: space again; applying from position {}",
                    position_.load());
      MutexLock lk(&health_mu_);
      error_.clear();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return false;
}

void ReadModelsImpl::Run() {
  if (read_only_for_space_ && !ReopenWritable()) return;
  auto sub = store_.Subscribe(GlobalPosition(position_.load()));
  while (!stop_.load()) {
    auto batch = sub->Next(kBatch, std::chrono::milliseconds(100));
    if (!batch.ok()) {
      if (!batch.status().IsUnavailable()) {
        MutexLock lk(&health_mu_);
        error_ = "reading the log: " + batch.status().ToString();
      }
      return;
    }
    if (batch->empty()) continue;
    FoldedBatch b;
    b.events = std::move(*batch);
    folder_.Fold(&b);
    if (Status st = Apply(b, generation_); !st.ok()) {
      if (st.IsNoSpace() && b.failure.empty()) {
        // Nothing of the batch was written: wait for room, then fold it
        // again from the checkpoint.
        if (!WaitForSpace(st)) return;
        sub = store_.Subscribe(GlobalPosition(position_.load()));
        continue;
      }
      // Stopped and unhealthy, never silently: a fold failure says so
      // itself; anything else (a storage failure) is said here.
      if (Health().healthy) (void)Fail("applying: " + st.ToString());
      return;
    }
  }
}

bool ReadModelsImpl::WaitForSpace(const Status& failure) {
  logger_->error("read models: the disk is full ({}); waiting for space",
                 failure.ToString());
  {
    MutexLock lk(&health_mu_);
    error_ = kDiskFull;
  }
  folder_.Clear();
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    rocksdb::Status rs = db_->Resume();
    if (!rs.ok()) continue;
    logger_->warn("read models: space again; applying from position {}",
                  position_.load());
    MutexLock lk(&health_mu_);
    error_.clear();
    return true;
  }
  return false;
}

void ReadModelsImpl::RemoveTableFiles(uint64_t gen) const {
  const std::string prefix =
      std::filesystem::path(TableFilePrefix(gen)).filename().string();
  const std::string earlier = "rebuild-index-" + std::to_string(gen) + "-";
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = f.path().filename().string();
    if (name.rfind(prefix, 0) == 0 || name.rfind(earlier, 0) == 0) {
      std::filesystem::remove(f.path(), ec);
    }
  }
}

}  // namespace internal

StatusOr<std::unique_ptr<ReadModels>> internal::OpenWithEnv(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key,
    rocksdb::Env* env) {
  if (!pseudonym_key.empty() && pseudonym_key.size() < 16) {
    return Status::InvalidArgument(
        "the pseudonym key must be at least 16 bytes");
  }
  auto impl = std::make_unique<internal::ReadModelsImpl>(
      store, std::move(catalog), std::move(logger), std::move(pseudonym_key));
  RETURN_IF_ERROR(impl->Init(dir, env));
  return std::unique_ptr<ReadModels>(std::move(impl));
}

StatusOr<std::unique_ptr<ReadModels>> ReadModels::Open(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key) {
  return internal::OpenWithEnv(dir, store, std::move(catalog),
                               std::move(logger), std::move(pseudonym_key),
                               nullptr);
}

}  // namespace caseledger::projections

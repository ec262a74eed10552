#include <rocksdb/sst_file_writer.h>

#include "projections/src/read_models_impl.h"
#include "projections/src/rebuild/fold_ahead.h"

namespace caseledger::projections::internal {

Status ReadModelsImpl::Rebuild(const RebuildOptions& options) {
  const uint64_t next = generation_ + 1;
  RETURN_IF_ERROR(DropGeneration(next));  // leftovers of a failed rebuild
  RemoveTableFiles(next);
  written_.Clear();
  RETURN_IF_ERROR(EnsureGeneration(next, /*make_current=*/false));
  folder_.Clear();
  committed_ = Committed{};
  rebuild_feed_seq_ = 0;
  uint64_t pos = 0;
  rocksdb::ColumnFamilyHandle* const index_cf = handles_.at(IndexCf(next));
  Status built = [&]() -> Status {
    // Four threads: one reads the log, one folds, a few batches ahead,
    // this one prepares each batch's writes, and one writes them.
    FoldAhead ahead(store_, *catalog_, !key_.empty());
    BatchWriter writer(
        db_.get(), index_cf, handles_.at(StatsCf(next)),
        {db_->DefaultColumnFamily()},
        rocksdb::Options(db_->GetDBOptions(), CfOptions(IndexCf(next))),
        rocksdb::Options(db_->GetDBOptions(), CfOptions(StatsCf(next))),
        TableFilePrefix(next),
        std::max<size_t>(1, options.index_entries_per_file),
        options.index_runs_at_once,
        BatchWriter::Target{
            handles_.at(StateCf(next)),
            rocksdb::Options(db_->GetDBOptions(), CfOptions(StateCf(next))),
            "case documents", std::max<size_t>(1, options.bytes_per_file)},
        BatchWriter::Target{
            handles_.at(FeedCf(next)),
            rocksdb::Options(db_->GetDBOptions(), CfOptions(FeedCf(next))),
            "feed records", std::max<size_t>(1, options.bytes_per_file)});
    writer_ = &writer;
    stats_in_memory_ = std::clamp<size_t>(options.stats_entries_in_memory, 1,
                                          TableChunk::kMaxOps);
    Status s = [&]() -> Status {
      for (;;) {
        ASSIGN_OR_RETURN(FoldedBatch batch, ahead.Next());
        if (batch.events.empty()) {
          RETURN_IF_ERROR(writer.EndBatches());
          RETURN_IF_ERROR(WriteStats(/*last=*/true));
          return writer.Finish();
        }
        pos = batch.events.back().position.value();
        RETURN_IF_ERROR(Apply(batch, next));
      }
    }();
    writer_ = nullptr;
    return s;
  }();
  if (built.ok()) {
    // Written without the WAL: on disk before it is swapped in.
    std::vector<rocksdb::ColumnFamilyHandle*> cfs = {
        db_->DefaultColumnFamily()};  // its checkpoint and feed sequence
    for (const std::string& name : GenerationCfs(next)) {
      cfs.push_back(handles_.at(name));
    }
    built = FromRocks(db_->Flush(rocksdb::FlushOptions(), cfs),
                      "flushing the rebuilt read models");
  }
  if (!built.ok()) {
    committed_ = Committed{};
    return built;
  }
  // The swap: one write moves the pointer to the new generation. Synced:
  // dropping the old generation below is durable at once (RocksDB syncs
  // its MANIFEST), so a pointer still in an unsynced WAL could be lost to
  // a power cut while the generation it kept pointing at is gone.
  rocksdb::WriteOptions swap;
  swap.sync = true;
  RETURN_IF_ERROR(
      FromRocks(db_->Put(swap, kGenerationKey, std::to_string(next)),
                "swapping generations"));
  const uint64_t old = generation_;
  {
    WriterLock lk(&gen_mu_);
    generation_ = next;
    state_cf_ = handles_.at(StateCf(next));
    index_cf_ = handles_.at(IndexCf(next));
    feed_cf_ = handles_.at(FeedCf(next));
    stats_cf_ = handles_.at(StatsCf(next));
    feed_seq_ = rebuild_feed_seq_;
  }
  position_.store(pos);
  folder_.Clear();
  committed_ = Committed{};
  logger_->info("read models rebuilt to position {} (generation {})", pos,
                next);
  return DropGeneration(old);
}

Status ReadModelsImpl::WaitForCompactions(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    uint64_t busy = 0, n = 0;
    for (const char* p :
         {"rocksdb.num-running-compactions", "rocksdb.num-running-flushes"}) {
      if (db_->GetIntProperty(p, &n)) busy += n;
    }
    {
      ReaderLock lk(&gen_mu_);
      for (auto* cf : {state_cf_, index_cf_, feed_cf_, stats_cf_}) {
        for (const char* p : {"rocksdb.compaction-pending",
                              "rocksdb.mem-table-flush-pending"}) {
          if (db_->GetIntProperty(cf, p, &n)) busy += n;
        }
      }
    }
    if (busy == 0) return Status::OK();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Unavailable("read-model compactions still running");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace caseledger::projections::internal

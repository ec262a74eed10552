// The read models' implementation, one class whose members live in one file
// per job: runner.cc (opening, the runner thread, generations), apply.cc
// (the second stage of a batch), case_state.cc (cases and lists),
// governance.cc (views, overview, audit sample), learning_feed.cc (feed
// records, the feed, the summary), rebuild/rebuild.cc. Internal.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caseledger/mutex.h"
#include "caseledger/projections/read_models.h"
#include "projections/src/anonymise.h"
#include "projections/src/fold.h"
#include "projections/src/json_writer.h"
#include "projections/src/key_filter.h"
#include "projections/src/layout.h"
#include "projections/src/pseudonym.h"
#include "projections/src/rebuild/batch_writer.h"
#include "projections/src/table_chunk.h"

namespace caseledger::projections::internal {

class ReadModelsImpl final : public ReadModels {
 public:
  ReadModelsImpl(const EventStore& store,
                 std::shared_ptr<const domain::EventCatalog> catalog,
                 std::shared_ptr<spdlog::logger> logger, std::string key);

  ~ReadModelsImpl() override;

  // The read models' memory is bounded, whatever the size of the log: one
  // block cache, and one budget for every column family's memtables (a
  // catch-up over millions of events would otherwise grow each to its own
  // 64 MiB, twice over).
  //
  // By column family (`name`): the index and the feed are only ever
  // scanned, so they carry no Bloom filters (a filter answers point reads
  // only, and building one costs every flush, compaction and table file).
  // Data is compressed (LZ4) where it lives, in the last level; a flush
  // (level 0, soon compacted) is written as it is, so nothing is compressed
  // twice.
  rocksdb::ColumnFamilyOptions CfOptions(std::string_view name) const;

  Status Init(const std::string& dir, rocksdb::Env* env = nullptr);

  // Models built in an older shape are rebuilt from the log.
  Status CheckShape();

  void SetIdentifierOpener(IdentifierOpener opener) override {
    opener_ = std::move(opener);
  }
  void Start() override;

  void Stop() override;

  Status CatchUp() override;

  ProjectionHealth Health() const override;

  bool WaitFor(GlobalPosition position,
               std::chrono::milliseconds timeout) const override;

  StatusOr<std::optional<Json>> Case(const std::string& case_id) const override;

  StatusOr<CasePage> ListCases(const CaseFilter& f, const std::string& cursor,
                               size_t limit) const override;

  Status Rebuild(const RebuildOptions& options) override;

  Status WaitForCompactions(std::chrono::milliseconds timeout) override;

  StatusOr<std::vector<std::pair<std::string, std::string>>> Dump()
      const override;

  // Calls visit(value, case id) for each index entry under `tag`, in order,
  // from the first whose value is at least `from`, until it returns false.
  template <typename Visit>
  Status ScanTag(IndexTag tag, Visit visit, const std::string& from = {}) const;

  StatusOr<GovernanceView> Governance(const std::string& view, Timestamp now,
                                      size_t limit) const override;

  // Calls `visit` with each item of a governance view, in due order, until
  // it returns false. One item at a time: counting a view of any size takes
  // no more memory than one item.
  Status VisitView(const std::string& view, Timestamp now,
                   const std::function<bool(GovernanceItem)>& visit) const;

  // The overview's counters, by tag: bucket -> count, in bucket order.
  using Counters =
      std::map<IndexTag, std::vector<std::pair<std::string, uint64_t>>>;
  Status ReadOverviewCounters(Counters* out) const;

  // How many entries of a counted tag whose due (or reported) time, the
  // part of the value before '|', sorts before `bound`: the days before
  // bound's day from the counters, and bound's own day from the index.
  StatusOr<uint64_t> CountBefore(const Counters& counters, IndexTag tag,
                                 const std::string& bound) const;

  // Costs what the number of distinct counted values (stages, months,
  // categories, minutes to acknowledgement, due days) costs, and a scan of
  // today's entries of the time-due views; not the number of cases.
  StatusOr<GovernanceOverview> Overview(Timestamp now) const override;
  StatusOr<std::vector<RetentionItem>> RetentionDue(
      const std::vector<domain::RetentionRule>& rules, Timestamp now,
      size_t limit) const override;

  StatusOr<projections::AuditSample> AuditSample(
      const std::string& month, size_t size,
      const std::string& seed) const override;

  StatusOr<FeedPage> Feed(uint64_t after_seq, size_t limit,
                          std::string_view released_before,
                          std::string_view consumer) const override;

  StatusOr<LearningSummary> Summary(const SummaryOptions& o) const override;

 private:
  static bool Matches(const CaseFilter& f, const Json& doc);

  // Creates (and drops) a generation's column families in one call each:
  // RocksDB rewrites and verifies its OPTIONS file once per call.
  Status EnsureGeneration(uint64_t gen, bool make_current = true);

  Status DropGeneration(uint64_t gen);

  // Stops the projection at an event it cannot apply: logs why and reports
  // it unhealthy. Never skips the event.
  Status Fail(const std::string& why);

  // Applies one folded batch into generation `gen`: every document, index
  // and feed change and the new checkpoint in one WriteBatch.
  Status Apply(FoldedBatch& b, uint64_t gen);

  // A rebuild's learning statistics: the counters and case identifiers it
  // has set since it last wrote them (in `committed_`, unbounded while it
  // runs), handed to its writer and forgotten. What it hands over hides
  // what it wrote before of the same keys. Each entry is what the building
  // would have last written (a counter as it stands, even 0; identifiers
  // as they last changed), so the result is the same. Written this way,
  // not through the memtable: the counters' keys come in no order (a
  // case's identifiers go under its pseudonym), and each would search the
  // memtable's skip list from its top. `last`: the
  // rebuild reads nothing after it (so it need not remember what it wrote).
  Status WriteStats(bool last = false);

  // Every identifier a case has held, under its pseudonym (so the feed can
  // scrub shared learning again, when it is read, of names the case gained
  // after the learning was approved).
  static std::string IdentifiersKey(const std::string& pseudonym) {
    return std::string("ids") + '\0' + pseudonym;
  }
  StatusOr<Identifiers> ReadIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                                        const std::string& pseudonym) const;
  static StatusOr<Identifiers> IdentifiersFromText(const std::string& text);
  // A case's identifiers as committed, from the applier's cache or read.
  StatusOr<Identifiers> CommittedIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                                             const std::string& pseudonym);
  // `is_new`: the case has nothing stored yet. Puts the case's identifiers
  // into `*writes` (key -> value) if they changed, and into `*written` (if
  // given) in any case.
  Status AddIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                        const std::string& case_id,
                        const std::string& pseudonym, bool is_new,
                        const Identifiers& added,
                        std::map<std::string, std::string>* writes,
                        std::map<std::string, Identifiers>* written);

  // The case's pseudonym, remembered (an HMAC for every event would cost
  // more than the rest of its record). Only the applying thread calls it.
  const std::string& CasePseudonym(const std::string& case_id);

  // A counter of the stats column family as this batch leaves it: from
  // the batch's own map `stats`, else read into it (0 if absent).
  StatusOr<uint64_t*> LoadCounter(
      rocksdb::ColumnFamilyHandle* stats_cf,
      std::unordered_map<std::string, uint64_t>* stats, const std::string& k);
  // Adds `delta` to a counter (never below 0).
  Status BumpCounter(rocksdb::ColumnFamilyHandle* stats_cf,
                     std::unordered_map<std::string, uint64_t>* stats,
                     const std::string& k, int delta);

  // The feed records one event yields. Built only from codes, booleans and
  // months, plus screened learning text: nothing is copied from a payload
  // wholesale, so no personal field can leak by being overlooked.
  // `emit` writes a record and returns its sequence number.
  Status FeedRecords(const RecordedEvent& e, const FeedInput& input,
                     rocksdb::ColumnFamilyHandle* stats_cf,
                     std::unordered_map<std::string, uint64_t>* stats,
                     const std::function<uint64_t(std::vector<Member>)>& emit);

  // Stats entries of shared learning: the feed sequence of the latest record
  // that shares a LearningRecorded event's text (0: none now), the record
  // that shared it before (0: none), and a mark on a record whose text was
  // withdrawn.
  static std::string SharedKey(const std::string& learning_event_id) {
    return std::string("shared") + '\0' + learning_event_id;
  }
  static std::string WithdrawnKey(uint64_t seq) {
    return std::string("withdrawn") + '\0' + Be64(seq);
  }
  static std::string PreviousKey(uint64_t seq) {
    return std::string("previous") + '\0' + Be64(seq);
  }

  // Opens the database (db_ and every column family in handles_).
  rocksdb::Status OpenDb(const std::vector<std::string>& names, bool read_only);

  // Opened read-only on a full disk: tries each second to open the models
  // writable, with readers held off (gen_mu_) while the database is
  // replaced. False if stopped first.
  bool ReopenWritable();

  void Run();

  // After a batch failed for want of space: unhealthy (saying so) until
  // RocksDB resumes, tried each second. The folder forgets the states it
  // folded for the batch that was not written. False if stopped meanwhile.
  bool WaitForSpace(const Status& failure);

  const EventStore& store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::shared_ptr<spdlog::logger> logger_;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> handles_;
  // Guards the current generation's CFs, and db_ itself while a full-disk
  // start's read-only open is replaced (ReopenWritable).
  // (The generation's handles are not annotated GUARDED_BY: the applying
  // thread, the only one that changes them, reads them without the lock.)
  mutable SharedMutex gen_mu_;
  rocksdb::DBOptions dbo_;
  // Opened read-only because the disk was full (runner and Init only).
  bool read_only_for_space_ = false;
  static constexpr char kDiskFull[] =
      "the disk is full: the read models wait for space";
  uint64_t generation_ = 1;
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* feed_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* stats_cf_ = nullptr;
  const std::string key_;    // pseudonym key; empty: no feed
  IdentifierOpener opener_;  // set before the feed is read
  const std::unique_ptr<const HmacSha256> hmac_;  // keyed by key_
  uint64_t feed_seq_ = 0;  // last feed sequence (applier only)
  uint64_t rebuild_feed_seq_ = 0;
  // Applier only: the folding stage of the runner and CatchUp (a rebuild
  // folds with one of its own).
  Folder folder_{store_, *catalog_, !key_.empty()};
  std::shared_ptr<rocksdb::Cache> block_cache_ =
      rocksdb::NewLRUCache(kBlockCacheBytes);
  std::unordered_map<std::string, std::string> pseudonyms_;  // case -> HMAC
  // A rebuild's table files, before they are ingested: the directory and
  // the start of their names.
  std::string TableFilePrefix(uint64_t gen) const {
    return dir_ + "/rebuild-" + std::to_string(gen) + "-";
  }
  // Those a failed rebuild of `gen` may have left (named "rebuild-index-"
  // by earlier versions).
  void RemoveTableFiles(uint64_t gen) const;

  // The keys a rebuild has written into its (new, so at first empty)
  // stats column family: a key it has not written is not there, so the
  // rebuild need not read it (or wait for its writer to read it).
  KeyFilter written_;
  bool MayHaveWritten(const std::string& key) const {
    return writer_ == nullptr || written_.MayContain(key);
  }

  // A rebuild's writer, while it runs: the applying thread's batches go to
  // it, and the applying thread's reads of the read models wait for it.
  BatchWriter* writer_ = nullptr;
  // While it runs: how many statistics entries it keeps in memory, at most,
  // before it writes them.
  size_t stats_in_memory_ = 0;
  Status DrainWrites() {
    return writer_ != nullptr ? writer_->Drain() : Status::OK();
  }
  // Applier only: values of the stats column family of one generation as
  // last written (so a batch reads a counter or a case's identifiers from
  // memory, not RocksDB). Bounded: cleared when full (a rebuild's: written
  // when full, see WriteStats).
  struct Committed {
    uint64_t generation = 0;  // 0: none
    std::unordered_map<std::string, uint64_t> counters;
    std::unordered_map<std::string, Identifiers> ids;  // by pseudonym
    // A rebuild's, instead of `ids`: identifiers entries as they changed,
    // to write (see WriteStats), and where each key's last is among them.
    TableChunk texts_chunk;
    std::unordered_map<std::string, size_t> texts;
  };
  Committed committed_;
  std::atomic<uint64_t> position_{0};
  mutable Mutex health_mu_;
  mutable CondVar progress_cv_;  // waits on health_mu_
  std::string error_ GUARDED_BY(health_mu_);
  Mutex run_mu_;
  std::atomic<bool> stop_{false};
  std::thread runner_ GUARDED_BY(run_mu_);
};

}  // namespace caseledger::projections::internal

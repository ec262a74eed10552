#include <algorithm>

#include "caseledger/service/case_service.h"
#include "projections/src/learning_rules.h"
#include "projections/src/read_models_impl.h"

namespace caseledger::projections::internal {

Status ReadModelsImpl::Apply(FoldedBatch& b, uint64_t gen) {
  if (!b.failure.empty()) return Fail(b.failure);
  rocksdb::ColumnFamilyHandle* state_cf = handles_.at(StateCf(gen));
  rocksdb::ColumnFamilyHandle* index_cf = handles_.at(IndexCf(gen));
  rocksdb::ColumnFamilyHandle* feed_cf = handles_.at(FeedCf(gen));
  rocksdb::ColumnFamilyHandle* stats_cf = handles_.at(StatsCf(gen));
  uint64_t& feed_seq = gen == generation_ ? feed_seq_ : rebuild_feed_seq_;
  uint64_t seq = feed_seq;  // this batch's last, once written
  if (committed_.generation != gen) {
    committed_ = Committed{};
    committed_.generation = gen;
  }
  // The counters this batch touched, as it leaves them. (A rebuild writes
  // none per batch: it counts straight into what it keeps.)
  std::unordered_map<std::string, uint64_t> touched;
  std::unordered_map<std::string, uint64_t>& stats =
      writer_ != nullptr ? committed_.counters : touched;
  rocksdb::WriteBatch wb;
  // A rebuild's feed records, for its writer.
  std::vector<std::pair<uint64_t, std::string>> feed_records;
  if (!key_.empty()) {
    for (size_t i = 0; i < b.events.size(); ++i) {
      const RecordedEvent& e = b.events[i];
      if (!service::IsCaseStream(e.stream_id)) continue;
      RETURN_IF_ERROR(FeedRecords(
          e, b.feed[i], stats_cf, &stats, [&](std::vector<Member> r) {
            r.push_back(Member::Num("seq", ++seq));
            if (writer_ != nullptr) {
              feed_records.emplace_back(seq, RecordText(std::move(r)));
            } else {
              wb.Put(feed_cf, Be64(seq), RecordText(std::move(r)));
            }
            return seq;
          }));
    }
  }
  // Index and stats writes go into the batch in key order: a memtable
  // inserts a run of ascending keys from where the last insert left off,
  // where keys in random order each search the skip list from its top.
  //
  // Index keys (views of the batch's cases' keys): put, else delete.
  std::vector<std::pair<std::string_view, bool>> index_writes;
  std::map<std::string, std::string> stats_writes;
  std::map<std::string, Identifiers> ids_written;  // by pseudonym
  for (const auto& [id, c] : b.cases) {
    // Both sorted: one walk finds what went and what came.
    static const IndexKeySet kNone;
    const IndexKeySet& before = c.keys_before ? *c.keys_before : kNone;
    const IndexKeySet& after = *c.keys;
    for (size_t was = 0, is = 0; was < before.size() || is < after.size();) {
      if (is == after.size() ||
          (was < before.size() && before[was] < after[is])) {
        index_writes.emplace_back(before[was++], false);
      } else if (was == before.size() || after[is] < before[was]) {
        index_writes.emplace_back(after[is++], true);
      } else {
        ++was;
        ++is;
      }
    }
    // (A rebuild's writer takes the documents from the batch.)
    if (writer_ == nullptr) wb.Put(state_cf, id, c.doc);
    if (!c.ids.names.empty() || !c.ids.exact.empty() || !c.ids.sealed.empty()) {
      RETURN_IF_ERROR(AddIdentifiers(
          stats_cf, id, CasePseudonym(id), c.first_version == 1, c.ids,
          &stats_writes, writer_ == nullptr ? &ids_written : nullptr));
    }
  }
  // The overview's counters follow the index entries they count.
  std::string counter;
  for (const auto& [k, put] : index_writes) {
    if (!OverviewCounterKey(k, &counter)) continue;
    RETURN_IF_ERROR(BumpCounter(stats_cf, &stats, counter, put ? 1 : -1));
  }
  // (Each key once: an index key ends with its case's id. A rebuild's
  // writer sorts them itself, with those of other batches.)
  if (writer_ == nullptr) std::sort(index_writes.begin(), index_writes.end());
  for (const auto& [k, put] : index_writes) {
    if (writer_ != nullptr) {
      writer_->IndexOps().Add(k, put);
    } else if (put) {
      wb.Put(index_cf, k, "");
    } else {
      wb.Delete(index_cf, k);
    }
  }
  const uint64_t last = b.events.back().position.value();
  // (A rebuild keeps its statistics in memory, below, and hands them to
  // its writer now and then.)
  if (writer_ == nullptr) {
    for (const auto& [k, n] : stats) stats_writes.emplace(k, Be64(n));
    for (const auto& [k, v] : stats_writes) wb.Put(stats_cf, k, v);
  } else {
    // Into the table chunk they will be written from, at once (the last
    // of a key's operations counts); remembered by where they are.
    for (const auto& [k, v] : stats_writes) {
      if (committed_.texts_chunk.value_bytes() + v.size() >
          TableChunk::kMaxValueBytes) {
        RETURN_IF_ERROR(WriteStats());
      }
      committed_.texts[k] = committed_.texts_chunk.size();
      committed_.texts_chunk.Add(k, true, v);
    }
  }
  if (seq != feed_seq) wb.Put(FeedSeqKey(gen), Be64(seq));
  wb.Put(CheckpointKey(gen), Be64(last));
  // Not synced: after a machine crash the batch and its checkpoint are
  // lost together and re-derived from the log. (A rebuild's writer writes
  // its batches; a failure there fails the rebuild.)
  if (writer_ == nullptr) {
    if (rocksdb::Status ws = db_->Write(rocksdb::WriteOptions(), &wb);
        !ws.ok()) {
      committed_ = Committed{};
      return FromRocks(ws, "applying");
    }
  }
  // What the batch wrote is now what is stored (or, in a rebuild, what
  // will be once its writer has written it: reads wait for that).
  feed_seq = seq;
  if (writer_ == nullptr) {
    if (committed_.counters.size() + stats.size() > kCommittedEntries) {
      committed_.counters.clear();
    }
    for (const auto& [k, n] : stats) committed_.counters[k] = n;
    if (committed_.ids.size() + ids_written.size() > kStateCacheEntries) {
      committed_.ids.clear();
    }
    for (auto& [k, ids] : ids_written) committed_.ids[k] = std::move(ids);
  }
  if (gen == generation_) {
    position_.store(last);
    MutexLock lk(&health_mu_);
    progress_cv_.SignalAll();
  }
  if (writer_ != nullptr) {
    RETURN_IF_ERROR(
        writer_->Write(std::move(wb), std::move(feed_records), std::move(b)));
    if (committed_.counters.size() + committed_.texts_chunk.size() >=
        stats_in_memory_) {
      return WriteStats();
    }
  }
  return Status::OK();
}

Status ReadModelsImpl::WriteStats(bool last) {
  TableChunk chunk = std::move(committed_.texts_chunk);
  committed_.texts_chunk = TableChunk();
  // (Sized first: the last write of a rebuild holds every counter.)
  size_t key_bytes = 0;
  for (const auto& [k, n] : committed_.counters) key_bytes += k.size();
  chunk.Reserve(committed_.counters.size(), key_bytes,
                8 * committed_.counters.size());
  for (const auto& [k, n] : committed_.counters) chunk.Add(k, true, Be64(n));
  if (!last) {
    for (const auto& [k, n] : committed_.counters) written_.Add(k);
    for (const auto& [k, at] : committed_.texts) written_.Add(k);
  }
  committed_.counters.clear();
  committed_.texts.clear();
  if (chunk.empty()) return Status::OK();
  return writer_->WriteStats(std::move(chunk));
}

StatusOr<uint64_t*> ReadModelsImpl::LoadCounter(
    rocksdb::ColumnFamilyHandle* stats_cf,
    std::unordered_map<std::string, uint64_t>* stats, const std::string& k) {
  auto it = stats->find(k);
  if (it == stats->end()) {
    if (auto c = committed_.counters.find(k); c != committed_.counters.end()) {
      it = stats->emplace(k, c->second).first;
    } else if (!MayHaveWritten(k)) {
      it = stats->emplace(k, 0).first;
    } else {
      RETURN_IF_ERROR(DrainWrites());
      std::string v;
      rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), stats_cf, k, &v);
      if (!gs.ok() && !gs.IsNotFound()) {
        return FromRocks(gs, "reading stats");
      }
      it = stats->emplace(k, gs.ok() ? FromBe64(v) : 0).first;
    }
  }
  return &it->second;
}

Status ReadModelsImpl::BumpCounter(
    rocksdb::ColumnFamilyHandle* stats_cf,
    std::unordered_map<std::string, uint64_t>* stats, const std::string& k,
    int delta) {
  ASSIGN_OR_RETURN(uint64_t * n, LoadCounter(stats_cf, stats, k));
  if (delta < 0 && *n == 0) return Status::OK();
  *n += static_cast<uint64_t>(static_cast<int64_t>(delta));
  return Status::OK();
}

}  // namespace caseledger::projections::internal

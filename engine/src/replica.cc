// EventStoreImpl::AppendReplicated: a replica writes its primary's records as
// they are, after checking every link of both chains.
#include <spdlog/spdlog.h>

#include "caseledger/storage.h"
#include "engine/src/event_store_impl.h"

namespace caseledger::internal {

Status EventStoreImpl::AddReplicated(std::string_view record, Group& g,
                                     bool* skip) {
  *skip = false;
  EventView v;
  RETURN_IF_ERROR(DecodeRecord(record, &v));
  const std::string at = "position " + std::to_string(v.position) + ": ";
  if (v.position <= g.position) {
    // Already stored (by an earlier call or earlier in this one): a
    // redelivery is harmless only if it is the same record.
    std::string stored;
    if (auto it = g.ids.find(EventIdKey(v.event_id));
        it != g.ids.end() && g.values[it->second] == record) {
      *skip = true;
      return Status::OK();
    }
    rocksdb::Status rs =
        db_->Get(rocksdb::ReadOptions(), log_cf_, LogKey(v.position), &stored);
    if (!rs.ok() && !rs.IsNotFound()) {
      return FromRocks(rs, "reading position " + std::to_string(v.position));
    }
    if (rs.ok() && stored == record) {
      *skip = true;
      return Status::OK();
    }
    return Status::Corruption(
        at + "differs from the record this log holds at that position");
  }
  if (v.position != g.position + 1) {
    return Status::Corruption(at + "expected position " +
                              std::to_string(g.position + 1) +
                              " next: records are missing");
  }
  RETURN_IF_ERROR(ValidateStreamId(v.stream_id));
  const std::string stream_id(v.stream_id);
  StreamHead head;
  if (auto it = g.heads.find(stream_id); it != g.heads.end()) {
    head = it->second;
  } else {
    ASSIGN_OR_RETURN(head, LoadStreamHead(stream_id));
  }
  if (v.version != head.version + 1) {
    return Status::Corruption(at + "case " + stream_id + " is at version " +
                              std::to_string(head.version) +
                              ", but the record is version " +
                              std::to_string(v.version));
  }
  if (ChainCaseHash(head.hash, v.canonical) != v.case_hash) {
    return Status::Corruption(at + "the case hash does not recompute from " +
                              "case " + stream_id + "'s previous event");
  }
  const Hash log_hash = ChainLogHash(g.log_hash, v.case_hash);
  if (log_hash != v.log_hash) {
    return Status::Corruption(
        at + "the log hash does not recompute from the previous record");
  }
  std::string id_key = EventIdKey(v.event_id);
  if (g.ids.contains(id_key)) {
    return Status::Corruption(at + "event id " + v.event_id.ToString() +
                              " is already stored");
  }
  std::string existing;
  rocksdb::Status rs =
      db_->Get(rocksdb::ReadOptions(), event_ids_cf_, id_key, &existing);
  if (rs.ok()) {
    return Status::Corruption(at + "event id " + v.event_id.ToString() +
                              " is already stored");
  }
  if (!rs.IsNotFound()) return FromRocks(rs, "reading event-id index");

  std::string pos_value;
  PutBe64(&pos_value, v.position);
  g.batch.Put(log_cf_, LogKey(v.position),
              rocksdb::Slice(record.data(), record.size()));
  g.batch.Put(stream_index_cf_, StreamIndexKey(stream_id, v.version),
              pos_value);
  g.batch.Put(event_ids_cf_, id_key, pos_value);
  g.heads[stream_id] = StreamHead{v.version, v.position, v.case_hash};
  g.position = v.position;
  g.log_hash = log_hash;
  g.ids[std::move(id_key)] = g.values.size();
  g.values.emplace_back(record);
  return Status::OK();
}

Status EventStoreImpl::AppendReplicated(const std::vector<std::string>& records,
                                        ReplicaApplyResult* result) {
  *result = ReplicaApplyResult{};
  RETURN_IF_ERROR(CheckOpen());
  if (options_.read_only) {
    return Status::FailedPrecondition("the store is open read-only");
  }
  if (!AcquireWriter()) {
    return Status::Unavailable("the event store is closing");
  }
  struct Release {
    EventStoreImpl* self;
    ~Release() { self->ReleaseWriter(); }
  } release{this};
  MaybeRecover();
  if (!write_failure_.ok()) return write_failure_;
  if (!db_ || read_only_for_space_) {
    return Status::Unavailable(
        "the store is open read-only (the disk was full)");
  }

  Group g;
  g.position = last_position_;
  g.log_hash = last_log_hash_;
  Status broken;
  for (const std::string& record : records) {
    bool skip = false;
    broken = AddReplicated(record, g, &skip);
    if (!broken.ok()) break;
    if (skip) ++result->skipped;
  }
  const uint64_t added = g.position - last_position_;
  if (added > 0) {
    RETURN_IF_ERROR(WriteGroup(g));
    result->applied = added;
    stats_.events_committed.fetch_add(added, std::memory_order_relaxed);
  }
  if (!broken.ok()) {
    logger_->error("refused a replicated record: {}", broken.ToString());
  }
  return broken;
}

}  // namespace caseledger::internal

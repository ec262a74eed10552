// EventStoreImpl's verification: every hash and index link recomputed
// (engine/FORMAT.md, "What verify checks").
#include <rocksdb/utilities/checkpoint.h>

#include <set>

#include "engine/src/event_store_impl.h"

namespace caseledger::internal {

// ---------------------------------------------------------------------------
// Verify

StatusOr<VerifyReport> EventStoreImpl::Verify(
    std::optional<std::string> stream_id) const {
  RETURN_IF_ERROR(CheckOpen());
  ReaderLock db_lock(&db_mu_);
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

}  // namespace caseledger::internal

// EventStoreImpl's reads: by position, by stream, the whole log,
// subscriptions, waiting for commits.
#include "engine/src/event_store_impl.h"

namespace caseledger::internal {

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
// Reads

bool EventStoreImpl::WaitForCommitAfter(
    uint64_t after, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  MutexLock lk(&commit_mu_);
  while (committed_.load(std::memory_order_acquire) <= after && !closing()) {
    if (!commit_cv_.WaitUntil(&commit_mu_, deadline)) break;
  }
  return committed_.load(std::memory_order_acquire) > after;
}

bool EventStoreImpl::WaitForPosition(GlobalPosition position,
                                     std::chrono::milliseconds timeout) const {
  if (position.value() == 0) return true;
  return WaitForCommitAfter(position.value() - 1, timeout);
}

LogHead EventStoreImpl::Head() const {
  MutexLock lk(&commit_mu_);
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
  ReaderLock db_lock(&db_mu_);
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
  ReaderLock db_lock(&db_mu_);
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
  ReaderLock db_lock(&db_mu_);
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
  ReaderLock db_lock(&db_mu_);
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

}  // namespace caseledger::internal

#include "notify/src/outbox.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <set>

#include "caseledger/storage.h"

namespace caseledger::notify::internal {
namespace {

// Keys, by their first byte:
//   c                       the position planned up to (be64)
//   s                       when alerting was first enabled (be64 micros)
//   n <id>                  a record (JSON)
//   q <lane> 0 <due> <id>   a pending record, by lane and due time
//   l <created> <id>        every record, by creation (the admin list)
//   d <id>                  a dead-lettered record
//   a <id> 0 <n>            attempt n of a record (JSON)
//   t <fire> <key>          a timer (JSON), by when it fires
//   k <key>                 a timer's fire time (be64), to replace it
constexpr char kPosition[] = "c";
constexpr char kSince[] = "s";

std::string RecordKey(const std::string& id) { return "n" + id; }
std::string ListKey(Timestamp created, const std::string& id) {
  std::string k = "l";
  PutBe64(&k, static_cast<uint64_t>(created.value()));
  return k + id;
}
std::string AttemptKey(const std::string& id, uint32_t n) {
  std::string k = "a" + id;
  k += '\0';
  PutBe32(&k, n);
  return k;
}
std::string TimerKey(Timestamp fire, const std::string& key) {
  std::string k = "t";
  PutBe64(&k, static_cast<uint64_t>(fire.value()));
  return k + key;
}
std::string TimerIndexKey(const std::string& key) { return "k" + key; }

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions o;
  o.sync = true;
  return o;
}

nlohmann::json NoticeJson(const Notice& n) {
  return {{"rule", n.rule},
          {"kind", n.kind},
          {"case_id", n.case_id},
          {"urgency", n.urgency},
          {"due", n.due.value()},
          {"send_at", n.send_at.value()},
          {"recipient", n.recipient.id},
          {"recipient_role", domain::RoleName(n.recipient.role)},
          {"source", n.source},
          {"unless_acknowledged", n.unless_acknowledged}};
}

Notice NoticeFrom(const nlohmann::json& j) {
  Notice n;
  n.rule = j.at("rule").get<std::string>();
  n.kind = j.at("kind").get<std::string>();
  n.case_id = j.at("case_id").get<std::string>();
  n.urgency = j.at("urgency").get<std::string>();
  n.due = Timestamp(j.at("due").get<int64_t>());
  n.send_at = Timestamp(j.at("send_at").get<int64_t>());
  n.recipient.id = j.at("recipient").get<std::string>();
  n.recipient.role =
      domain::ParseRole(j.at("recipient_role").get<std::string>())
          .value_or(domain::Role::kDsl);
  n.source = j.at("source").get<std::string>();
  n.unless_acknowledged = j.at("unless_acknowledged").get<bool>();
  return n;
}

nlohmann::json AttemptJson(const Attempt& a) {
  return {{"number", a.number},
          {"at", a.at.value()},
          {"micros", a.micros},
          {"ok", a.ok},
          {"detail", a.detail}};
}

Attempt AttemptFrom(const nlohmann::json& j) {
  Attempt a;
  a.number = j.at("number").get<uint32_t>();
  a.at = Timestamp(j.at("at").get<int64_t>());
  a.micros = j.at("micros").get<int64_t>();
  a.ok = j.at("ok").get<bool>();
  a.detail = j.at("detail").get<std::string>();
  return a;
}

bool HasPrefix(const rocksdb::Slice& s, std::string_view p) {
  return s.size() >= p.size() && std::string_view(s.data(), p.size()) == p;
}

}  // namespace

std::string QueueKey(const std::string& lane, Timestamp due,
                     const std::string& id) {
  std::string k = "q" + lane;
  k += '\0';
  PutBe64(&k, static_cast<uint64_t>(due.value()));
  return k + id;
}

nlohmann::json Record::ToJson() const {
  return {{"id", id},
          {"notice", NoticeJson(notice)},
          {"channel", channel},
          {"lane", lane},
          {"status", status},
          {"attempts", attempts},
          {"created_at", created_at.value()},
          {"next_attempt_at", next_attempt_at.value()},
          {"finished_at", finished_at.value()},
          {"last_error", last_error},
          {"position", position}};
}

StatusOr<Record> Record::FromJson(const nlohmann::json& j) {
  try {
    Record r;
    r.id = j.at("id").get<std::string>();
    r.notice = NoticeFrom(j.at("notice"));
    r.channel = j.at("channel").get<std::string>();
    r.lane = j.at("lane").get<std::string>();
    r.status = j.at("status").get<std::string>();
    r.attempts = j.at("attempts").get<uint32_t>();
    r.created_at = Timestamp(j.at("created_at").get<int64_t>());
    r.next_attempt_at = Timestamp(j.at("next_attempt_at").get<int64_t>());
    r.finished_at = Timestamp(j.at("finished_at").get<int64_t>());
    r.last_error = j.at("last_error").get<std::string>();
    r.position = j.at("position").get<uint64_t>();
    return r;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("a stored notification: ") +
                              e.what());
  }
}

Outbox::~Outbox() {
  if (db_) (void)db_->Close();
}

StatusOr<std::unique_ptr<Outbox>> Outbox::Open(
    const std::string& dir, std::shared_ptr<spdlog::logger> logger) {
  std::unique_ptr<Outbox> box(new Outbox());
  box->logger_ = std::move(logger);
  rocksdb::Options o;
  o.create_if_missing = true;
  o.max_background_jobs = 1;
  o.info_log = RocksLogger(box->logger_);
  o.keep_log_file_num = 1;
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(o, dir, &db),
                            "opening the outbox at " + dir));
  box->db_.reset(db);
  RETURN_IF_ERROR(box->Load());
  return box;
}

Status Outbox::Load() {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kPosition, &v);
  if (s.ok()) {
    position_.store(FromBe64(v));
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading the outbox's position");
  }
  s = db_->Get(rocksdb::ReadOptions(), kSince, &v);
  if (s.ok()) {
    since_ = Timestamp(static_cast<int64_t>(FromBe64(v)));
  } else if (s.IsNotFound()) {
    since_ = NowUtc();
    RETURN_IF_ERROR(FromRocks(
        db_->Put(Synced(), kSince, Be64(static_cast<uint64_t>(since_.value()))),
        "writing the outbox's start"));
  } else {
    return FromRocks(s, "reading the outbox's start");
  }
  uint64_t pending = 0, dead = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("q"); it->Valid() && HasPrefix(it->key(), "q"); it->Next()) {
    ++pending;
  }
  for (it->Seek("d"); it->Valid() && HasPrefix(it->key(), "d"); it->Next()) {
    ++dead;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "counting the outbox"));
  pending_.store(pending);
  dead_.store(dead);
  return Status::OK();
}

void Outbox::PutRecord(rocksdb::WriteBatch* b, const Record& r) const {
  (void)b->Put(RecordKey(r.id), r.ToJson().dump());
}

Status Outbox::Commit(const std::vector<Record>& records,
                      const std::vector<Timer>& timers,
                      const std::vector<Timer>& fired, uint64_t position) {
  rocksdb::WriteBatch b;
  uint64_t pending = 0, dead = 0;
  std::set<std::string> ids;
  for (const Record& r : records) {
    // Planned already (the same event or deadline seen again, say by a
    // timer that fired before the planner reached the event that moved
    // it): the record stands as it is, attempts and all.
    if (!ids.insert(r.id).second) continue;
    std::string was;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), RecordKey(r.id), &was);
    if (s.ok()) continue;
    if (!s.IsNotFound()) return FromRocks(s, "reading a notification");
    PutRecord(&b, r);
    (void)b.Put(ListKey(r.created_at, r.id), "");
    if (r.status == "pending") {
      (void)b.Put(QueueKey(r.lane, r.next_attempt_at, r.id), "");
      ++pending;
    } else if (r.status == "dead") {
      (void)b.Put("d" + r.id, "");
      ++dead;
    }
  }
  for (const Timer& t : fired) {
    (void)b.Delete(TimerKey(t.fire_at, t.Key()));
    (void)b.Delete(TimerIndexKey(t.Key()));
  }
  std::set<std::string> fired_keys;
  for (const Timer& t : fired) fired_keys.insert(t.Key());
  for (const Timer& t : timers) {
    std::string was;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), TimerIndexKey(t.Key()), &was);
    if (s.ok()) {
      const std::string key =
          TimerKey(Timestamp(static_cast<int64_t>(FromBe64(was))), t.Key());
      if (!fired_keys.count(t.Key())) {
        // The same deadline, as far on or further: keep what is there.
        std::string stored;
        rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), key, &stored);
        if (g.ok()) {
          auto old =
              Timer::FromJson(nlohmann::json::parse(stored, nullptr, false));
          if (old.ok() && old->due == t.due && old->stage >= t.stage) continue;
        } else if (!g.IsNotFound()) {
          return FromRocks(g, "reading a timer");
        }
      }
      (void)b.Delete(key);
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "reading a timer");
    }
    (void)b.Put(TimerKey(t.fire_at, t.Key()), t.ToJson().dump());
    (void)b.Put(TimerIndexKey(t.Key()),
                Be64(static_cast<uint64_t>(t.fire_at.value())));
  }
  if (position != 0) (void)b.Put(kPosition, Be64(position));
  // Counted before the write, so that a lane done with one of them at once
  // never takes the count below zero.
  pending_.fetch_add(pending);
  dead_.fetch_add(dead);
  Status written = FromRocks(db_->Write(Synced(), &b), "writing the outbox");
  if (!written.ok()) {
    pending_.fetch_sub(pending);
    dead_.fetch_sub(dead);
    return written;
  }
  if (position != 0) position_.store(position);
  return Status::OK();
}

StatusOr<std::vector<Timer>> Outbox::DueTimers(Timestamp now,
                                               size_t max) const {
  std::vector<Timer> out;
  std::string end = "t";
  PutBe64(&end, static_cast<uint64_t>(now.value()) + 1);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek("t"); it->Valid() && out.size() < max; it->Next()) {
    if (!HasPrefix(it->key(), "t") || it->key().compare(end) >= 0) break;
    auto j = nlohmann::json::parse(it->value().ToString(), nullptr, false);
    ASSIGN_OR_RETURN(Timer t, Timer::FromJson(j));
    out.push_back(std::move(t));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading timers"));
  return out;
}

std::optional<Timestamp> Outbox::NextTimer() const {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek("t");
  if (!it->Valid() || !HasPrefix(it->key(), "t") || it->key().size() < 9) {
    return std::nullopt;
  }
  return Timestamp(static_cast<int64_t>(GetBe64(it->key().data() + 1)));
}

StatusOr<std::vector<Record>> Outbox::Due(const std::string& lane,
                                          Timestamp now, size_t max) {
  std::vector<Record> out;
  rocksdb::WriteBatch stale;
  std::string prefix = "q" + lane;
  prefix += '\0';
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && out.size() < max; it->Next()) {
    rocksdb::Slice k = it->key();
    if (!HasPrefix(k, prefix) || k.size() < prefix.size() + 8) break;
    const int64_t due = static_cast<int64_t>(GetBe64(k.data() + prefix.size()));
    if (due > now.value()) break;
    const std::string id(k.data() + prefix.size() + 8,
                         k.size() - prefix.size() - 8);
    ASSIGN_OR_RETURN(std::optional<Record> r, Get(id));
    if (!r) {
      return Status::Corruption("the outbox queues " + id +
                                ", which it does not hold");
    }
    // A queue entry the record has moved on from is dropped, not sent.
    if (r->status != "pending" || r->lane != lane ||
        r->next_attempt_at.value() != due) {
      (void)stale.Delete(k);
      continue;
    }
    out.push_back(std::move(*r));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the outbox queue"));
  if (stale.Count() > 0) {
    RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &stale),
                              "dropping stale queue entries"));
  }
  return out;
}

StatusOr<std::set<std::string>> Outbox::QueuedLanes() const {
  std::set<std::string> lanes;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek("q");
  while (it->Valid() && HasPrefix(it->key(), "q")) {
    const std::string_view k(it->key().data() + 1, it->key().size() - 1);
    const size_t end = k.find('\0');
    if (end == std::string_view::npos) break;
    std::string lane(k.substr(0, end));
    // Past every key of this lane: its prefix with the separator's
    // successor.
    std::string next = "q" + lane;
    next += '\x01';
    lanes.insert(std::move(lane));
    it->Seek(next);
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the outbox queue"));
  return lanes;
}

std::optional<Timestamp> Outbox::NextDue(const std::string& lane) const {
  std::string prefix = "q" + lane;
  prefix += '\0';
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  it->Seek(prefix);
  if (!it->Valid() || !HasPrefix(it->key(), prefix) ||
      it->key().size() < prefix.size() + 8) {
    return std::nullopt;
  }
  return Timestamp(
      static_cast<int64_t>(GetBe64(it->key().data() + prefix.size())));
}

Status Outbox::Update(const Record& was, const Record& now,
                      const std::optional<Attempt>& attempt) {
  rocksdb::WriteBatch b;
  if (was.status == "pending") {
    (void)b.Delete(QueueKey(was.lane, was.next_attempt_at, was.id));
  }
  if (now.status == "pending") {
    (void)b.Put(QueueKey(now.lane, now.next_attempt_at, now.id), "");
  }
  if (now.status == "dead" && was.status != "dead")
    (void)b.Put("d" + now.id, "");
  PutRecord(&b, now);
  if (attempt) {
    (void)b.Put(AttemptKey(now.id, attempt->number),
                AttemptJson(*attempt).dump());
  }
  RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &b),
                            "recording a notification"));
  if (was.status == "pending" && now.status != "pending") pending_.fetch_sub(1);
  if (now.status == "dead" && was.status != "dead") dead_.fetch_add(1);
  return Status::OK();
}

Status Outbox::Sync() {
  return FromRocks(db_->SyncWAL(), "syncing the outbox");
}

StatusOr<std::optional<Record>> Outbox::Get(const std::string& id) const {
  std::string v;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), RecordKey(id), &v);
  if (s.IsNotFound()) return std::optional<Record>();
  RETURN_IF_ERROR(FromRocks(s, "reading a notification"));
  auto j = nlohmann::json::parse(v, nullptr, false);
  ASSIGN_OR_RETURN(Record r, Record::FromJson(j));
  return std::optional<Record>(std::move(r));
}

StatusOr<Outbox::Page> Outbox::List(const std::string& status,
                                    const std::string& before_id,
                                    size_t limit) const {
  Page page;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  if (before_id.empty()) {
    it->SeekForPrev("m");  // past every "l" key
  } else {
    ASSIGN_OR_RETURN(std::optional<Record> from, Get(before_id));
    if (!from) return Status::InvalidArgument("no notification " + before_id);
    it->SeekForPrev(ListKey(from->created_at, from->id));
    if (it->Valid()) it->Prev();
  }
  size_t scanned = 0;
  for (; it->Valid() && HasPrefix(it->key(), "l"); it->Prev()) {
    if (it->key().size() < 9) continue;
    const std::string id(it->key().data() + 9, it->key().size() - 9);
    if (page.rows.size() == limit || scanned == kListScan) {
      // More to come: the next page starts after the last one looked at.
      page.next =
          page.rows.size() == limit ? page.rows.back().first.id : page.next;
      break;
    }
    ++scanned;
    page.next = id;
    ASSIGN_OR_RETURN(std::optional<Record> r, Get(id));
    if (!r || (!status.empty() && r->status != status)) continue;
    std::vector<Attempt> attempts;
    std::unique_ptr<rocksdb::Iterator> a(
        db_->NewIterator(rocksdb::ReadOptions()));
    std::string prefix = "a" + id;
    prefix += '\0';
    for (a->Seek(prefix); a->Valid() && HasPrefix(a->key(), prefix);
         a->Next()) {
      auto j = nlohmann::json::parse(a->value().ToString(), nullptr, false);
      try {
        attempts.push_back(AttemptFrom(j));
      } catch (const nlohmann::json::exception& e) {
        return Status::Corruption(std::string("a stored attempt: ") + e.what());
      }
    }
    page.rows.emplace_back(std::move(*r), std::move(attempts));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing notifications"));
  // Nothing after what was looked at: the end.
  if (!it->Valid() || !HasPrefix(it->key(), "l")) page.next.clear();
  return page;
}

}  // namespace caseledger::notify::internal

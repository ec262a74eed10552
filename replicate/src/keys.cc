#include "replicate/src/keys.h"

#include <spdlog/spdlog.h>

#include <set>

namespace caseledger::replicate::internal {
namespace {

constexpr char kCaseHeader[] = "Caseledger-Case";
constexpr char kScopeHeader[] = "Caseledger-Scope";
constexpr size_t kRemembered = 200000;

std::string Header(natsMsg* m, const char* name) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, name, &v) != NATS_OK || v == nullptr) return {};
  return v;
}

}  // namespace

StatusOr<std::vector<Outgoing>> KeyShipper::Pending(
    const std::vector<RecordedEvent>& events) const {
  std::vector<Outgoing> out;
  if (!enabled()) return out;
  std::set<std::string> cases;
  for (const RecordedEvent& e : events) cases.insert(e.stream_id);
  for (const std::string& case_id : cases) {
    auto wrapped = keys_.store->Wrapped(case_id);
    if (wrapped.status().IsInvalidArgument()) continue;  // not a case's log
    RETURN_IF_ERROR(wrapped.status());
    for (keys::WrappedKey& k : *wrapped) {
      Outgoing m = Message(std::move(k));
      auto seen = stored_.find(m.subject);
      if (seen != stored_.end() && seen->second == m.id) continue;
      out.push_back(std::move(m));
    }
  }
  return out;
}

Outgoing KeyShipper::Message(keys::WrappedKey key) const {
  Outgoing m;
  m.subject = KeySubject(config_, key.case_id, key.scope);
  m.id = Sha256Hex(m.subject + '\0' + key.wrapped);
  m.headers = {{kCaseHeader, std::move(key.case_id)},
               {kScopeHeader, std::move(key.scope)}};
  m.data = std::move(key.wrapped);
  return m;
}

StatusOr<bool> KeyShipper::NeedsResend(const Nats& nats) const {
  if (!enabled()) return false;
  ASSIGN_OR_RETURN(
      std::optional<StoredMessage> noted,
      LastOnSubject(nats, KeyStream(config_), KeyKekSubject(config_)));
  return !noted || noted->data != keys_.store->kek_id();
}

Status KeyShipper::ForEach(const std::function<Status(Outgoing)>& fn) const {
  return keys_.store->ForEachWrapped(
      [&](const keys::WrappedKey& k) { return fn(Message(k)); });
}

Outgoing KeyShipper::KekNote() const {
  Outgoing m;
  m.subject = KeyKekSubject(config_);
  m.data = keys_.store->kek_id();
  m.id = "kek-" + m.data;
  return m;
}

void KeyShipper::Stored(const Outgoing& m) {
  if (stored_.size() >= kRemembered) stored_.clear();
  stored_[m.subject] = m.id;
}

Status KeyShipper::PurgeErased(const Nats& nats,
                               const std::vector<RecordedEvent>& events) const {
  if (!enabled() || !keys_.erased_scope) return Status::OK();
  const std::string stream = KeyStream(config_);
  for (const RecordedEvent& e : events) {
    std::optional<std::string> scope = keys_.erased_scope(e);
    if (!scope) continue;
    const std::string filter = *scope == "*"
                                   ? KeyCaseFilter(config_, e.stream_id) + ".>"
                                   : KeySubject(config_, e.stream_id, *scope);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = filter.c_str();
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_PurgeStream(nats.js(), stream.c_str(), &o, &jerr);
    if (s != NATS_OK) {
      return FromNats(
          s, jerr, "purging the keys erased by event " + e.event_id.ToString());
    }
  }
  return Status::OK();
}

StatusOr<keys::WrappedKey> DecodeKeyMessage(natsMsg* m) {
  keys::WrappedKey k{
      Header(m, kCaseHeader), Header(m, kScopeHeader),
      std::string(natsMsg_GetData(m),
                  static_cast<size_t>(natsMsg_GetDataLength(m)))};
  if (k.case_id.empty() || k.scope.empty() || k.wrapped.empty()) {
    return Status::InvalidArgument(std::string("a message on ") +
                                   natsMsg_GetSubject(m) +
                                   " does not hold a data key");
  }
  return k;
}

Status KeyTaker::Attach(const Nats& nats) {
  RETURN_IF_ERROR(EnsureKeyStream(nats, config_));
  return consumer_.Attach(nats, KeyStream(config_),
                          config_.subjects + "-keys.>", durable_,
                          "caseledger follower: data keys");
}

Status KeyTaker::Drain() {
  if (!enabled()) return Status::OK();
  const std::string note = KeyKekSubject(config_);
  return consumer_.Drain([&](std::vector<MsgPtr> batch) -> Status {
    std::vector<keys::WrappedKey> taken;
    for (const MsgPtr& m : batch) {
      if (note == natsMsg_GetSubject(m.get())) continue;
      ASSIGN_OR_RETURN(taken.emplace_back(), DecodeKeyMessage(m.get()));
    }
    // One durable write for the batch, then one acknowledgement (AckAll).
    Status put = keys_.store->PutWrapped(taken);
    if (!put.ok()) {
      const std::string what =
          "storing data keys from the key stream: " + put.message();
      // A different key for a scope held halts the follower; a KEK it
      // lacks is retried (the operator gives it).
      if (put.IsCorruption()) return Status::Corruption(what);
      if (put.IsFailedPrecondition()) return Status::Unavailable(what);
      return put;
    }
    taken_ += taken.size();
    if (!batch.empty()) natsMsg_Ack(batch.back().get(), nullptr);
    return Status::OK();
  });
}

StatusOr<std::vector<keys::KeyStore::PlannedErasure>> KeyTaker::PlanErasures(
    const std::vector<std::string>& records) const {
  std::vector<keys::KeyStore::PlannedErasure> plans;
  if (!enabled() || !keys_.erased_scope) return plans;
  for (const std::string& r : records) {
    ASSIGN_OR_RETURN(RecordedEvent e, DecodeStoredRecord(r));
    std::optional<std::string> scope = keys_.erased_scope(e);
    if (!scope) continue;
    keys::KeyStore::PlannedErasure plan{e.stream_id, *scope,
                                        e.event_id.ToString()};
    RETURN_IF_ERROR(keys_.store->PlanErasure(plan));
    plans.push_back(std::move(plan));
  }
  return plans;
}

Status KeyTaker::Erase(
    const std::vector<keys::KeyStore::PlannedErasure>& plans) const {
  for (const keys::KeyStore::PlannedErasure& p : plans) {
    RETURN_IF_ERROR(keys_.store->Destroy(p.case_id, p.scope, p.event_id));
    RETURN_IF_ERROR(keys_.store->DropPlannedErasure(p));
    spdlog::info("follower: destroyed the keys of {} in case {} (erasure {})",
                 p.scope, p.case_id, p.event_id);
  }
  return Status::OK();
}

}  // namespace caseledger::replicate::internal

#include "caseledger/service/access.h"

#include <openssl/rand.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "caseledger/mutex.h"
#include "caseledger/service/case_service.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;

// The event for `payload`, checked against its schema first: a record the
// catalog would refuse is never written.
StatusOr<ProposedEvent> Prepare(const domain::EventCatalog& catalog,
                                std::string type, const Json& payload,
                                const domain::Actor& actor) {
  const uint32_t version = catalog.CurrentVersion(type);
  RETURN_IF_ERROR(catalog.Validate(type, version, payload));
  ProposedEvent e;
  e.type = std::move(type);
  e.schema_version = version;
  e.actor =
      caseledger::Actor{actor.id, std::string(domain::RoleName(actor.role))};
  e.payload = payload.dump();
  return e;
}

}  // namespace

std::string_view CaseReadKindName(CaseReadKind what) {
  switch (what) {
    case CaseReadKind::kState:
      return "state";
    case CaseReadKind::kHistory:
      return "history";
    case CaseReadKind::kReplay:
      return "replay";
    case CaseReadKind::kReplaySteps:
      return "replay_steps";
    case CaseReadKind::kList:
      return "list";
    case CaseReadKind::kExport:
      return "export";
  }
  return "state";
}

StatusOr<std::vector<ReadRecord>> PrepareCaseReads(
    const domain::EventCatalog& catalog, const domain::Actor& actor,
    CaseReadKind what, const std::vector<CaseShown>& shown) {
  std::vector<ReadRecord> out;
  out.reserve(shown.size());
  for (const CaseShown& c : shown) {
    ASSIGN_OR_RETURN(ProposedEvent e, Prepare(catalog, "CaseRead",
                                              {{"case_id", c.case_id},
                                               {"read", CaseReadKindName(what)},
                                               {"version", c.version}},
                                              actor));
    e.event_id = EventId::NewV7();
    out.push_back(ReadRecord{AccessStreamOf(c.case_id), std::move(e)});
  }
  return out;
}

void AppendReadRecords(EventStore& store, std::vector<ReadRecord> records,
                       std::function<void(Status)> done) {
  if (records.empty()) {
    done(Status::OK());
    return;
  }
  // One append per case (each its own access stream), answered when the
  // last is durable.
  struct Pending {
    Mutex mu;
    size_t left GUARDED_BY(mu);
    Status failure GUARDED_BY(mu) = Status::OK();
    std::function<void(Status)> done;
  };
  auto pending = std::make_shared<Pending>();
  {
    MutexLock lk(&pending->mu);
    pending->left = records.size();
  }
  pending->done = std::move(done);
  auto finish = [pending](const Status& s) {
    MutexLock lk(&pending->mu);
    if (!s.ok() && pending->failure.ok()) pending->failure = s;
    if (--pending->left > 0) return;
    Status failure = pending->failure;
    lk.Unlock();
    pending->done(failure);
  };
  for (ReadRecord& r : records) {
    store.AppendAsync(
        std::move(r.stream_id), ExpectedVersion::Any(), {std::move(r.event)},
        [finish](const StatusOr<AppendResult>& a) { finish(a.status()); });
  }
}

void RecordCaseReads(EventStore& store, const domain::EventCatalog& catalog,
                     const domain::Actor& actor, CaseReadKind what,
                     const std::vector<CaseShown>& shown,
                     std::function<void(Status)> done) {
  auto records = PrepareCaseReads(catalog, actor, what, shown);
  if (!records.ok()) {
    done(records.status());
    return;
  }
  AppendReadRecords(store, std::move(*records), std::move(done));
}

Status CheckForwardedRead(const domain::EventCatalog& catalog,
                          const ReadRecord& record) {
  const ProposedEvent& e = record.event;
  if (e.type != "CaseRead" || e.event_id.IsNil()) {
    return Status::InvalidArgument(
        "a forwarded record must be a CaseRead with its event id");
  }
  const Json payload = Json::parse(e.payload, nullptr, false);
  if (payload.is_discarded() || !payload.is_object() ||
      !payload.contains("case_id") || !payload["case_id"].is_string()) {
    return Status::InvalidArgument("a forwarded CaseRead names no case");
  }
  if (record.stream_id !=
      AccessStreamOf(payload["case_id"].get<std::string>())) {
    return Status::InvalidArgument(
        "a forwarded CaseRead must go on its case's access stream");
  }
  RETURN_IF_ERROR(catalog.Validate(e.type, e.schema_version, payload));
  auto role = domain::ParseRole(e.actor.role);
  if (!role || e.actor.id.empty()) {
    return Status::InvalidArgument("a forwarded CaseRead names no actor");
  }
  return Status::OK();
}

StatusOr<std::vector<AccessRecord>> ReadAccessLog(const EventStore& store,
                                                  const std::string& case_id) {
  std::vector<AccessRecord> out;
  RETURN_IF_ERROR(
      ForEachInStream(store, AccessStreamOf(case_id), StreamVersion(1), 0,
                      [&](const RecordedEvent& e) {
                        Json p = ParseStoredJson(e.payload);
                        AccessRecord r;
                        r.actor_id = e.actor.id;
                        r.role = e.actor.role;
                        r.when = e.recorded_at;
                        r.position = e.position.value();
                        if (p.is_object()) {
                          r.what = p.value("read", "");
                          if (auto v = p.find("version");
                              v != p.end() && v->is_number_unsigned()) {
                            r.version = v->get<uint64_t>();
                          }
                        }
                        out.push_back(std::move(r));
                        return Status::OK();
                      }));
  return out;
}

std::string TokenHash(std::string_view token) { return Sha256Hex(token); }

StatusOr<std::string> IssueToken(EventStore& store,
                                 const domain::EventCatalog& catalog,
                                 const domain::Actor& actor,
                                 const std::string& issued_by) {
  RETURN_IF_ERROR(ValidateStreamId(actor.id));
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return Status::IOError("no random bytes for a token");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token = "clt_";
  for (unsigned char b : raw) {
    token.push_back(kHex[b >> 4]);
    token.push_back(kHex[b & 0xF]);
  }
  ASSIGN_OR_RETURN(ProposedEvent e,
                   Prepare(catalog, "TokenIssued",
                           {{"token_sha256", TokenHash(token)},
                            {"actor_id", actor.id},
                            {"role", domain::RoleName(actor.role)}},
                           domain::Actor{issued_by, domain::Role::kAdmin}));
  auto r = store.Append(kTokenStream, ExpectedVersion::Any(), {std::move(e)});
  if (!r.ok()) return r.status();
  return token;
}

Status ForEachTokenEvent(const EventStore& store, uint64_t from_version,
                         const std::function<void(const TokenEvent&)>& visit) {
  return ForEachInStream(
      store, kTokenStream, StreamVersion(from_version), 0,
      [&](const RecordedEvent& e) -> Status {
        Json p = ParseStoredJson(e.payload);
        TokenEvent t;
        t.version = e.version.value();
        t.issued = e.type == "TokenIssued";
        if (p.is_object()) {
          t.token_sha256 = p.value("token_sha256", "");
          if (t.issued) {
            auto role = domain::ParseRole(p.value("role", ""));
            if (role) t.actor = domain::Actor{p.value("actor_id", ""), *role};
          }
        }
        visit(t);
        return Status::OK();
      });
}

StatusOr<size_t> RevokeTokens(EventStore& store,
                              const domain::EventCatalog& catalog,
                              const std::string& token,
                              const std::string& actor_id,
                              const std::string& revoked_by) {
  if (token.empty() == actor_id.empty()) {
    return Status::InvalidArgument("name either a token or an actor");
  }
  // The live tokens as the stream stands (hash -> actor), and its version.
  std::map<std::string, domain::Actor> live;
  uint64_t version = 0;
  RETURN_IF_ERROR(ForEachTokenEvent(store, 1, [&](const TokenEvent& t) {
    version = t.version;
    if (t.issued && t.actor && !t.token_sha256.empty()) {
      live[t.token_sha256] = *t.actor;
    } else if (!t.issued) {
      live.erase(t.token_sha256);
    }
  }));
  std::vector<std::string> hashes;
  if (!token.empty()) {
    if (!live.count(TokenHash(token))) {
      return Status::NotFound("no live token matches (unknown or revoked)");
    }
    hashes.push_back(TokenHash(token));
  } else {
    for (const auto& [hash, actor] : live) {
      if (actor.id == actor_id) hashes.push_back(hash);
    }
    if (hashes.empty()) {
      return Status::NotFound("actor " + actor_id + " has no live token");
    }
  }
  std::vector<ProposedEvent> events;
  for (const auto& hash : hashes) {
    ASSIGN_OR_RETURN(ProposedEvent e,
                     Prepare(catalog, "TokenRevoked", {{"token_sha256", hash}},
                             domain::Actor{revoked_by, domain::Role::kAdmin}));
    events.push_back(std::move(e));
  }
  auto r =
      store.Append(kTokenStream, ExpectedVersion::Exact(StreamVersion(version)),
                   std::move(events));
  if (!r.ok()) return r.status();
  return hashes.size();
}

}  // namespace caseledger::service

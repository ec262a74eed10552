// Access records and bearer tokens: the two kinds of event the product
// writes besides a case's own, written here (the service layer) like every
// other event, validated against their schemas in the catalog.
//
// Every read of a case's contents (its state, its history, a replay, its
// row in a list) is recorded on the case's access stream before the answer
// goes out: no record, no read. Each record names who read (the event's
// actor), when (its recorded-at, the store's clock), what, and which
// version of the case was shown.
//
// A bearer token is 32 random bytes, shown once when issued; the log keeps
// only its SHA-256, as a TokenIssued event on the system stream
// "sys.tokens" (so issuing and revoking are on the audited, hash-chained
// log too).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "caseledger/domain/policy.h"
#include "caseledger/event_store.h"

namespace caseledger::service {

// The stream of the bearer tokens' events.
inline constexpr char kTokenStream[] = "sys.tokens";

// What a read of a case showed.
enum class CaseReadKind {
  kState,
  kHistory,
  kReplay,
  kReplaySteps,
  kList,
  kExport
};
// Its name in a CaseRead event ("state", "history", ...).
std::string_view CaseReadKindName(CaseReadKind what);

struct CaseShown {
  std::string case_id;
  uint64_t version = 0;  // the version of the case that was shown
};

// A read's record, ready to append: the CaseRead event, with its id, and
// the case's access stream it goes on.
struct ReadRecord {
  std::string stream_id;
  ProposedEvent event;
};

// The records of `actor` reading `what` of each case in `shown`, each with
// a new event id: a record a follower forwards to the primary keeps it, so
// the primary writes it once however often it arrives.
StatusOr<std::vector<ReadRecord>> PrepareCaseReads(
    const domain::EventCatalog& catalog, const domain::Actor& actor,
    CaseReadKind what, const std::vector<CaseShown>& shown);

// Appends them, each joining the store's group commit; `done` as for
// RecordCaseReads. An id already stored with the same record is answered
// from the log (a forwarded record that arrives twice).
void AppendReadRecords(EventStore& store, std::vector<ReadRecord> records,
                       std::function<void(Status)> done);

// What the primary takes from a follower: a CaseRead with its event id, on
// the access stream of the case it names, its payload valid against the
// catalog, by a named actor in a known role. InvalidArgument otherwise.
Status CheckForwardedRead(const domain::EventCatalog& catalog,
                          const ReadRecord& record);

// Records that `actor` read `what` of each case in `shown`: one CaseRead
// event per case, each on the case's access stream, joining the store's
// group commit. Calls `done` once every record is durable, with OK or the
// first failure (then the read must not be answered). `done` runs on the
// store's writer thread, or on the caller's when `shown` is empty: it must
// not block.
void RecordCaseReads(EventStore& store, const domain::EventCatalog& catalog,
                     const domain::Actor& actor, CaseReadKind what,
                     const std::vector<CaseShown>& shown,
                     std::function<void(Status)> done);

// One record of a case's access log.
struct AccessRecord {
  std::string actor_id;
  std::string role;
  Timestamp when;
  std::string what;
  std::optional<uint64_t> version;  // absent in older records
  uint64_t position = 0;            // on the log
};

// A case's access log, oldest first.
StatusOr<std::vector<AccessRecord>> ReadAccessLog(const EventStore& store,
                                                  const std::string& case_id);

// Issues a token for `actor` and records its hash. Returns the token (the
// only time it exists in clear).
StatusOr<std::string> IssueToken(EventStore& store,
                                 const domain::EventCatalog& catalog,
                                 const domain::Actor& actor,
                                 const std::string& issued_by);

// Revokes tokens: the token `token` (as issued, "clt_..."), or, when
// `token` is empty, every live token of `actor_id`. Each revocation is a
// TokenRevoked event in the token stream, all in one append that expects
// the stream as read (so a token issued meanwhile is not missed silently).
// Returns how many tokens were revoked; kNotFound when none matched.
StatusOr<size_t> RevokeTokens(EventStore& store,
                              const domain::EventCatalog& catalog,
                              const std::string& token,
                              const std::string& actor_id,
                              const std::string& revoked_by);

// Hex SHA-256 of a token: what the log keeps of it.
std::string TokenHash(std::string_view token);

// A token event as read back: TokenIssued (with `actor`) or TokenRevoked.
struct TokenEvent {
  bool issued = false;
  std::string token_sha256;
  std::optional<domain::Actor> actor;  // issued only
  uint64_t version = 0;                // in the token stream
};

// Calls `visit` with each token event from `from_version` on, in order.
Status ForEachTokenEvent(const EventStore& store, uint64_t from_version,
                         const std::function<void(const TokenEvent&)>& visit);

}  // namespace caseledger::service

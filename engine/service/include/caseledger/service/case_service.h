// CaseService: the command path. Loads a case from the log (folding its
// events, upcast to the current schemas), asks the domain to decide, and
// appends the result with optimistic concurrency. The API and the seed
// generator both go through here, so both obey the same rules.
//
// Thread-safe: concurrent commands on one case are serialised by the store's
// expected-version check (the loser reloads and decides again, unless the
// caller pinned a version).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/domain/decide.h"
#include "caseledger/event_store.h"
#include "caseledger/keys/sealer.h"

namespace caseledger::service {

// Case ids are at most this long, so that the case's access stream id
// ("access:" + case id) is a valid stream id too.
inline constexpr size_t kMaxCaseIdLength = 120;

// The stream that records every read of a case's contents.
inline std::string AccessStreamOf(const std::string& case_id) {
  return "access:" + case_id;
}

struct CommandOptions {
  // If set, the case must be at exactly this version (HTTP If-Match); a
  // mismatch is kAborted with the current version. If unset, a concurrent
  // write makes the service reload and decide again (up to 3 times).
  std::optional<uint64_t> expected_version;
  // If set, the id of the (first) event the command writes. Re-sending a
  // command with the same event id returns the original result without
  // deciding again (a retry after a lost response is always safe).
  std::optional<EventId> event_id;
  std::string correlation_id;
  // Stored on every event written. With `event_id`, a retry whose causation
  // id differs from the stored event's is kAlreadyExists: the id was reused
  // by a different request (the API puts a digest of the request here).
  std::string causation_id;
  // The request's time budget: a command not yet handed to the store by
  // then (it waited for a worker, or loading and deciding took too long) is
  // refused with kUnavailable and writes nothing. Once handed over, an
  // append is not abandoned: it is durable or refused as the store says.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

struct CommandResult {
  std::string case_id;
  uint64_t version = 0;   // the case's version after the command
  uint64_t position = 0;  // global position of the last event written
  bool deduplicated = false;
  std::vector<EventId> event_ids;
};

// JSON this system wrote (stored payloads, read-model documents and
// records) parsed into the document nlohmann::json::parse(text, nullptr,
// false) makes (a discarded value when `text` is not JSON), value types
// included, faster (bench/RESULTS.md): built from simdjson's parse, with
// whatever simdjson might read differently (deeper than its limit, an integer
// beyond 64 bits, a negative zero) parsed by nlohmann instead. Not for
// requests: their limits are the API's.
nlohmann::json ParseStoredJson(std::string_view text);

// One stored event as the domain reads it (payload upcast to the current
// schema version).
StatusOr<domain::DomainEvent> ToDomainEvent(const domain::EventCatalog& catalog,
                                            const RecordedEvent& e);

// The envelope of a stored event as the domain reads it, with the payload
// at `schema_version` (ToDomainEvent's, or a fold's that reads the stored
// payload as it is because it is at the current version).
domain::EventHeader ToEventHeader(const RecordedEvent& e,
                                  uint32_t schema_version);
// The same, into `*out`, reusing its strings' buffers (a fold that reads
// every event keeps one header).
void ToEventHeader(const RecordedEvent& e, uint32_t schema_version,
                   domain::EventHeader* out);

// Visits the case's events from version `from` through `through` (0: to
// the end), in order, as the domain reads them. Stops at the first event
// that cannot be decoded, or the first non-OK status `visit` returns, and
// returns it.
Status ForEachDomainEvent(
    const EventStore& store, const domain::EventCatalog& catalog,
    const std::string& case_id, uint64_t from, uint64_t through,
    const std::function<Status(const domain::DomainEvent&)>& visit);

// The case folded from its events, up to `max_version` if not 0.
StatusOr<domain::CaseState> LoadCase(const EventStore& store,
                                     const domain::EventCatalog& catalog,
                                     const std::string& case_id,
                                     uint64_t max_version = 0);

// Whether a stream holds a case (rather than tokens or an access log).
inline bool IsCaseStream(std::string_view id) {
  return id.rfind("sys.", 0) != 0 && id.rfind("access:", 0) != 0;
}

class CaseService {
 public:
  // `store` and `sealer` must outlive the service. Commands take the
  // store's clock (EventStore::Now) as now, for due times. Every personal
  // field of every event the service writes is sealed by `sealer` first.
  CaseService(EventStore& store,
              std::shared_ptr<const domain::EventCatalog> catalog,
              domain::DomainConfig config, const keys::Sealer& sealer);

  StatusOr<CommandResult> Execute(const std::string& case_id,
                                  const std::string& command,
                                  const nlohmann::json& body,
                                  const domain::Actor& actor,
                                  const CommandOptions& options = {});

  // Runs `work` on a thread that may block briefly (reads), never the
  // store's writer thread.
  using Executor = std::function<void(std::function<void()>)>;
  using CommandCallback = std::function<void(StatusOr<CommandResult>)>;

  // Execute without waiting for the fsync: decides on the calling thread,
  // hands the append to the store's group commit, and calls `done` (through
  // `executor`) once it is durable or refused. So a handful of threads can
  // keep many commands in flight, all sharing fsyncs. Same rules, retries
  // and results as Execute.
  void ExecuteAsync(std::string case_id, std::string command,
                    nlohmann::json body, domain::Actor actor,
                    CommandOptions options, Executor executor,
                    CommandCallback done, int attempt = 1);

  // The case folded from its events, up to `max_version` if given (0 for
  // "all"). A case with no events has stage kNone and version 0. The latest
  // state of recently loaded cases is kept folded in memory (bounded), so a
  // load reads and folds only the events appended since.
  StatusOr<domain::CaseState> Load(const std::string& case_id,
                                   uint64_t max_version = 0) const;
  // The latest state, shared rather than copied: the kept state itself when
  // nothing was appended since it was kept. Never null.
  StatusOr<std::shared_ptr<const domain::CaseState>> LoadShared(
      const std::string& case_id) const;

  // One stored event as the domain reads it (payload upcast, its personal
  // fields sealed: the rules never read them).
  StatusOr<domain::DomainEvent> ToDomainEvent(const RecordedEvent& e) const;
  // The same with its sealed fields opened (kErasedMarker where the key was
  // destroyed): for the service's own use and for readers allowed to see
  // them.
  StatusOr<domain::DomainEvent> ToOpenedEvent(const RecordedEvent& e) const;

  const keys::Sealer& sealer() const { return sealer_; }

  const domain::EventCatalog& catalog() const { return *catalog_; }

 private:
  // A conflict without a pinned version is decided again this many times.
  static constexpr int kAttempts = 3;

  // What a command will append, or the answer to a retry.
  struct Prepared {
    std::optional<CommandResult> retry;
    std::vector<ProposedEvent> events;
    ExpectedVersion expected = ExpectedVersion::Any();
  };
  StatusOr<Prepared> Prepare(const std::string& case_id,
                             const std::string& command,
                             const nlohmann::json& body,
                             const domain::Actor& actor,
                             const CommandOptions& options) const;
  // The answer to an append: the result, an error, or nullopt to decide
  // again.
  StatusOr<std::optional<CommandResult>> Finish(
      const std::string& case_id, const CommandOptions& options, int attempt,
      StatusOr<AppendResult> appended) const;
  StatusOr<std::optional<CommandResult>> FindRetry(
      const std::string& case_id, const CommandOptions& options) const;
  // Whether `command` writes PersonalDataErased.
  static bool Erases(std::string_view command);
  // After an erasure is in the log: destroys the keys it names and forgets
  // its plan. kUnavailable (the event stays; a retry or the next start
  // finishes it) if the keys could not be destroyed.
  StatusOr<CommandResult> CarryOutErasure(const std::string& case_id,
                                          CommandResult r) const;
  // The learning `learning_id` as an approval releases it: its recorded
  // text with the corrections made since, scrubbed of every identifier the
  // case holds ({"what_went_well": ..., "what_must_change": ...}).
  StatusOr<nlohmann::json> ReleasedLearning(
      const std::string& case_id, const std::string& learning_id) const;

  EventStore& store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  domain::DomainConfig config_;
  const keys::Sealer& sealer_;
  class StateCache;
  std::shared_ptr<StateCache> states_;  // thread-safe
};

}  // namespace caseledger::service

#include "caseledger/service/case_service.h"

#include <limits>

namespace caseledger::service {

using Json = nlohmann::json;

CaseService::CaseService(EventStore& store,
                         std::shared_ptr<const domain::EventCatalog> catalog,
                         domain::DomainConfig config,
                         std::function<Timestamp()> clock)
    : store_(store),
      catalog_(std::move(catalog)),
      config_(config),
      clock_(clock ? std::move(clock) : [] { return NowUtc(); }) {}

StatusOr<domain::DomainEvent> ToDomainEvent(const domain::EventCatalog& catalog,
                                            const RecordedEvent& e) {
  Json payload = Json::parse(e.payload, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded()) {
    return Status::Corruption("event " + e.event_id.ToString() +
                              " has a payload that is not JSON");
  }
  ASSIGN_OR_RETURN(
      payload, catalog.Upcast(e.type, e.schema_version, std::move(payload)));
  domain::DomainEvent d;
  d.event_id = e.event_id.ToString();
  d.type = e.type;
  d.schema_version = catalog.CurrentVersion(e.type);
  d.actor = domain::Actor{
      e.actor.id,
      domain::ParseRole(e.actor.role).value_or(domain::Role::kReporter)};
  d.recorded_at = e.recorded_at;
  d.payload = std::move(payload);
  return d;
}

StatusOr<domain::CaseState> LoadCase(const EventStore& store,
                                     const domain::EventCatalog& catalog,
                                     const std::string& case_id,
                                     uint64_t max_version) {
  domain::CaseState state;
  RETURN_IF_ERROR(ForEachInStream(store, case_id, StreamVersion(1), max_version,
                                  [&](const RecordedEvent& e) -> Status {
                                    ASSIGN_OR_RETURN(domain::DomainEvent d,
                                                     ToDomainEvent(catalog, e));
                                    state = domain::Evolve(std::move(state), d);
                                    return Status::OK();
                                  }));
  return state;
}

StatusOr<domain::DomainEvent> CaseService::ToDomainEvent(
    const RecordedEvent& e) const {
  return service::ToDomainEvent(*catalog_, e);
}

StatusOr<domain::CaseState> CaseService::Load(const std::string& case_id,
                                              uint64_t max_version) const {
  return LoadCase(store_, *catalog_, case_id, max_version);
}

StatusOr<std::optional<CommandResult>> CaseService::FindRetry(
    const std::string& case_id, const CommandOptions& options) const {
  if (!options.event_id) return std::optional<CommandResult>();
  auto stored = store_.ReadEvent(*options.event_id);
  if (stored.status().IsNotFound()) return std::optional<CommandResult>();
  if (!stored.ok()) return stored.status();
  if (stored->stream_id != case_id) {
    return Status::AlreadyExists("event id " + options.event_id->ToString() +
                                 " belongs to another case");
  }
  // The causation id says which request caused the event: a retry must be
  // the same request, not another one reusing its id.
  if (!options.causation_id.empty() &&
      stored->causation_id != options.causation_id) {
    return Status::AlreadyExists("event id " + options.event_id->ToString() +
                                 " was written by a different request");
  }
  CommandResult r;
  r.case_id = case_id;
  r.version = stored->version.value();
  r.position = stored->position.value();
  r.deduplicated = true;
  r.event_ids.push_back(stored->event_id);
  return std::optional<CommandResult>(std::move(r));
}

StatusOr<CommandResult> CaseService::Execute(const std::string& case_id,
                                             const std::string& command,
                                             Json body,
                                             const domain::Actor& actor,
                                             const CommandOptions& options) {
  RETURN_IF_ERROR(ValidateStreamId(case_id));
  if (case_id.size() > kMaxCaseIdLength || case_id.rfind("access:", 0) == 0 ||
      case_id.rfind("sys.", 0) == 0) {
    return Status::InvalidArgument(
        "a case id is at most 120 characters and does not start with "
        "'access:' or 'sys.'");
  }
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    // A retry of a command that was already written (perhaps, on a later
    // attempt, by a concurrent twin of this request): answer as the first
    // time.
    ASSIGN_OR_RETURN(std::optional<CommandResult> retry,
                     FindRetry(case_id, options));
    if (retry) return std::move(*retry);
    ASSIGN_OR_RETURN(domain::CaseState state, Load(case_id));
    if (options.expected_version &&
        *options.expected_version != state.version) {
      return Status::WrongExpectedVersion(
          state.version, "case " + case_id + " is at version " +
                             std::to_string(state.version) + ", not " +
                             std::to_string(*options.expected_version));
    }
    const Timestamp now = clock_();
    domain::Command cmd{command, body, actor, now};
    auto lookup =
        [this, &case_id](
            const std::string& id) -> std::optional<domain::DomainEvent> {
      auto parsed = EventId::Parse(id);
      if (!parsed.ok()) return std::nullopt;
      auto e = store_.ReadEvent(*parsed);
      if (!e.ok() || e->stream_id != case_id) return std::nullopt;
      auto d = ToDomainEvent(*e);
      if (!d.ok()) return std::nullopt;
      return *d;
    };
    ASSIGN_OR_RETURN(std::vector<domain::NewEvent> decided,
                     domain::Decide(state, cmd, *catalog_, config_, lookup));

    std::vector<ProposedEvent> events;
    for (size_t i = 0; i < decided.size(); ++i) {
      ProposedEvent p;
      if (i == 0 && options.event_id) p.event_id = *options.event_id;
      p.type = decided[i].type;
      p.schema_version = decided[i].schema_version;
      p.occurred_at = now;
      p.actor = Actor{actor.id, std::string(domain::RoleName(actor.role))};
      p.correlation_id = options.correlation_id;
      p.causation_id = options.causation_id;
      p.payload = decided[i].payload.dump();
      events.push_back(std::move(p));
    }
    auto appended = store_.Append(
        case_id, ExpectedVersion::Exact(StreamVersion(state.version)),
        std::move(events));
    if (appended.ok()) {
      CommandResult r;
      r.case_id = case_id;
      r.version = appended->last_version.value();
      r.position = appended->last_position.value();
      r.deduplicated = appended->deduplicated;
      r.event_ids = appended->event_ids;
      return r;
    }
    // A twin of this request (same event id) was written between our check
    // and our append: answer as it was answered, if it was the same request.
    if (appended.status().IsAlreadyExists() && options.event_id) {
      ASSIGN_OR_RETURN(std::optional<CommandResult> twin,
                       FindRetry(case_id, options));
      if (twin) return std::move(*twin);
    }
    // Someone else wrote to the case between our read and our append. With a
    // pinned version that is the caller's conflict; otherwise decide again
    // on the new state.
    if (!appended.status().IsAborted() || options.expected_version ||
        attempt == kAttempts) {
      return appended.status();
    }
  }
}

}  // namespace caseledger::service

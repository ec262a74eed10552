#include "caseledger/service/case_service.h"

#include <array>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_map>

#include "caseledger/mutex.h"
#include "caseledger/service/anonymise.h"
#include "caseledger/service/operations.h"

namespace caseledger::service {

using Json = nlohmann::json;

// Folded states of recently loaded cases, each as of its version. A case's
// events never change once written, so a state at version N stays the fold
// of events 1..N for good: a load folds only what came after it. Bounded:
// a full shard drops an entry to make room.
class CaseService::StateCache {
 public:
  std::shared_ptr<const domain::CaseState> Get(const std::string& id) {
    Shard& s = ShardOf(id);
    MutexLock lk(&s.mu);
    auto it = s.states.find(id);
    return it == s.states.end() ? nullptr : it->second;
  }
  // Keeps `state` unless a later one is kept already.
  void Put(const std::string& id,
           std::shared_ptr<const domain::CaseState> state) {
    Shard& s = ShardOf(id);
    MutexLock lk(&s.mu);
    auto it = s.states.find(id);
    if (it != s.states.end()) {
      if (it->second->version < state->version) it->second = std::move(state);
      return;
    }
    if (s.states.size() >= kPerShard) s.states.erase(s.states.begin());
    s.states.emplace(id, std::move(state));
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kPerShard = 128;  // a few KiB each
  struct Shard {
    Mutex mu;
    std::unordered_map<std::string, std::shared_ptr<const domain::CaseState>>
        states GUARDED_BY(mu);
  };
  Shard& ShardOf(const std::string& id) {
    return shards_[std::hash<std::string>()(id) % kShards];
  }
  std::array<Shard, kShards> shards_;
};

CaseService::CaseService(EventStore& store,
                         std::shared_ptr<const domain::EventCatalog> catalog,
                         domain::DomainConfig config,
                         const keys::Sealer& sealer)
    : store_(store),
      catalog_(std::move(catalog)),
      config_(std::move(config)),
      sealer_(sealer),
      states_(std::make_shared<StateCache>()) {}

StatusOr<domain::DomainEvent> CaseService::ToOpenedEvent(
    const RecordedEvent& e) const {
  ASSIGN_OR_RETURN(domain::DomainEvent d, ToDomainEvent(e));
  RETURN_IF_ERROR(sealer_.UnsealEvent(e.stream_id, e.event_id, &d.payload));
  return d;
}

StatusOr<domain::DomainEvent> ToDomainEvent(const domain::EventCatalog& catalog,
                                            const RecordedEvent& e) {
  Json payload = ParseStoredJson(e.payload);
  if (payload.is_discarded()) {
    return Status::Corruption("event " + e.event_id.ToString() +
                              " has a payload that is not JSON");
  }
  ASSIGN_OR_RETURN(
      payload, catalog.Upcast(e.type, e.schema_version, std::move(payload)));
  domain::DomainEvent d;
  static_cast<domain::EventHeader&>(d) =
      ToEventHeader(e, catalog.CurrentVersion(e.type));
  d.payload = std::move(payload);
  return d;
}

domain::EventHeader ToEventHeader(const RecordedEvent& e,
                                  uint32_t schema_version) {
  domain::EventHeader h;
  ToEventHeader(e, schema_version, &h);
  return h;
}

void ToEventHeader(const RecordedEvent& e, uint32_t schema_version,
                   domain::EventHeader* out) {
  out->event_id.resize(36);
  e.event_id.FormatTo(out->event_id.data());
  out->type.assign(e.type);
  out->schema_version = schema_version;
  out->actor.id.assign(e.actor.id);
  out->actor.role =
      domain::ParseRole(e.actor.role).value_or(domain::Role::kReporter);
  out->recorded_at = e.recorded_at;
}

StatusOr<domain::CaseState> LoadCase(const EventStore& store,
                                     const domain::EventCatalog& catalog,
                                     const std::string& case_id,
                                     uint64_t max_version) {
  domain::CaseState state;
  RETURN_IF_ERROR(ForEachDomainEvent(store, catalog, case_id, 1, max_version,
                                     [&](const domain::DomainEvent& d) {
                                       state =
                                           domain::Evolve(std::move(state), d);
                                       return Status::OK();
                                     }));
  return state;
}

Status ForEachDomainEvent(
    const EventStore& store, const domain::EventCatalog& catalog,
    const std::string& case_id, uint64_t from, uint64_t through,
    const std::function<Status(const domain::DomainEvent&)>& visit) {
  return ForEachInStream(store, case_id, StreamVersion(from), through,
                         [&](const RecordedEvent& e) -> Status {
                           ASSIGN_OR_RETURN(domain::DomainEvent d,
                                            ToDomainEvent(catalog, e));
                           return visit(d);
                         });
}

StatusOr<domain::DomainEvent> CaseService::ToDomainEvent(
    const RecordedEvent& e) const {
  return service::ToDomainEvent(*catalog_, e);
}

StatusOr<domain::CaseState> CaseService::Load(const std::string& case_id,
                                              uint64_t max_version) const {
  if (max_version != 0) {
    return LoadCase(store_, *catalog_, case_id, max_version);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const domain::CaseState> state,
                   LoadShared(case_id));
  return *state;
}

StatusOr<std::shared_ptr<const domain::CaseState>> CaseService::LoadShared(
    const std::string& case_id) const {
  std::shared_ptr<const domain::CaseState> kept = states_->Get(case_id);
  // Copied only once there is something new to fold into it.
  std::optional<domain::CaseState> folded;
  RETURN_IF_ERROR(ForEachDomainEvent(
      store_, *catalog_, case_id, kept ? kept->version + 1 : 1, 0,
      [&](const domain::DomainEvent& d) {
        if (!folded) folded = kept ? *kept : domain::CaseState{};
        *folded = domain::Evolve(std::move(*folded), d);
        return Status::OK();
      }));
  if (!folded) {
    return kept ? kept : std::make_shared<const domain::CaseState>();
  }
  auto state = std::make_shared<const domain::CaseState>(std::move(*folded));
  states_->Put(case_id, state);
  return state;
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

namespace {

Status WithinBudget(const CommandOptions& options) {
  if (options.deadline &&
      std::chrono::steady_clock::now() > *options.deadline) {
    return Status::Unavailable(
        "the request ran past its time budget before it could be written; "
        "nothing was written: retry it");
  }
  return Status::OK();
}

}  // namespace

StatusOr<Json> CaseService::ReleasedLearning(
    const std::string& case_id, const std::string& learning_id) const {
  Identifiers ids;
  std::optional<std::string> recorded;  // the latest LearningRecorded
  Json text;
  RETURN_IF_ERROR(ForEachInStream(
      store_, case_id, StreamVersion(1), 0, [&](const RecordedEvent& e) {
        ASSIGN_OR_RETURN(const domain::DomainEvent d, ToOpenedEvent(e));
        CollectIdentifiers(d.payload, &ids);
        if (d.type == "LearningRecorded" &&
            d.payload.value("learning_id", "") == learning_id) {
          recorded = d.event_id;
          text = {
              {"what_went_well", d.payload.value("what_went_well", "")},
              {"what_must_change", d.payload.value("what_must_change", "")}};
        } else if (d.type == "EventAmended" && recorded &&
                   d.payload.value("amends_event_id", "") == *recorded) {
          const Json fixed =
              d.payload.value("corrected_fields", Json::object());
          for (const char* f : {"what_went_well", "what_must_change"}) {
            if (fixed.contains(f) && fixed[f].is_string()) text[f] = fixed[f];
          }
        }
        return Status::OK();
      }));
  if (!recorded) {
    return Status::FailedPrecondition("no learning " + learning_id +
                                      " in case " + case_id);
  }
  Json released = Json::object();
  for (const char* f : {"what_went_well", "what_must_change"}) {
    released[f] = Scrub(text[f].get<std::string>(), ids);
  }
  return released;
}

StatusOr<CaseService::Prepared> CaseService::Prepare(
    const std::string& case_id, const std::string& command, const Json& body,
    const domain::Actor& actor, const CommandOptions& options) const {
  RETURN_IF_ERROR(ValidateStreamId(case_id));
  if (case_id.size() > kMaxCaseIdLength || case_id.rfind("access:", 0) == 0 ||
      case_id.rfind("sys.", 0) == 0) {
    return Status::InvalidArgument(
        "a case id is at most 120 characters and does not start with "
        "'access:' or 'sys.'");
  }
  RETURN_IF_ERROR(WithinBudget(options));
  Prepared p;
  ASSIGN_OR_RETURN(domain::CaseState state, Load(case_id));
  // Barred before anything else is said about the case (even its version,
  // even to a retry of a command made before the bar).
  if (state.stage != domain::Stage::kNone && state.IsBarred(actor)) {
    return Status::PermissionDenied(
        "you are barred from this case (conflict of interest)");
  }
  // A retry of a command that was already written (perhaps, on a later
  // attempt, by a concurrent twin of this request): answer as the first
  // time.
  ASSIGN_OR_RETURN(p.retry, FindRetry(case_id, options));
  if (p.retry) return p;

  if (options.expected_version && *options.expected_version != state.version) {
    return Status::WrongExpectedVersion(
        state.version, "case " + case_id + " is at version " +
                           std::to_string(state.version) + ", not " +
                           std::to_string(*options.expected_version));
  }
  const Timestamp now = store_.Now();
  domain::Command cmd{command, body, actor, now};
  auto lookup =
      [this,
       &case_id](const std::string& id) -> std::optional<domain::DomainEvent> {
    auto parsed = EventId::Parse(id);
    if (!parsed.ok()) return std::nullopt;
    auto e = store_.ReadEvent(*parsed);
    if (!e.ok() || e->stream_id != case_id) return std::nullopt;
    // Opened: an amendment is checked against the event as it was written.
    auto d = ToOpenedEvent(*e);
    if (!d.ok()) return std::nullopt;
    return *d;
  };
  ASSIGN_OR_RETURN(std::vector<domain::NewEvent> decided,
                   domain::Decide(state, cmd, *catalog_, config_, lookup));
  for (domain::NewEvent& ev : decided) {
    // An approval releases the learning: the service holds the case's
    // plaintext, so it scrubs the text here and the event carries what
    // the learning feed may share.
    if (ev.type == "LearningScreened" &&
        ev.payload.value("decision", "") == "approved_for_sharing") {
      ASSIGN_OR_RETURN(
          ev.payload["released"],
          ReleasedLearning(case_id, ev.payload.value("learning_id", "")));
    }
  }
  RETURN_IF_ERROR(WithinBudget(options));
  for (size_t i = 0; i < decided.size(); ++i) {
    ProposedEvent e;
    // The id is the sealed fields' associated data: set before sealing.
    e.event_id =
        i == 0 && options.event_id ? *options.event_id : EventId::NewV7();
    RETURN_IF_ERROR(sealer_.Seal(case_id, e.event_id, decided[i].type,
                                 decided[i].schema_version,
                                 &decided[i].payload));
    e.type = decided[i].type;
    e.schema_version = decided[i].schema_version;
    e.occurred_at = now;
    e.actor = Actor{actor.id, std::string(domain::RoleName(actor.role))};
    e.correlation_id = options.correlation_id;
    e.causation_id = options.causation_id;
    e.payload = decided[i].payload.dump();
    if (e.type == "PersonalDataErased") {
      // Durable before the event is: a crash after the append leaves the
      // plan for the next start to finish.
      RETURN_IF_ERROR(sealer_.keys().PlanErasure(
          {case_id, ErasedKeyScope(decided[i].payload),
           e.event_id.ToString()}));
    }
    p.events.push_back(std::move(e));
  }
  p.expected = ExpectedVersion::Exact(StreamVersion(state.version));
  return p;
}

StatusOr<std::optional<CommandResult>> CaseService::Finish(
    const std::string& case_id, const CommandOptions& options, int attempt,
    StatusOr<AppendResult> appended) const {
  if (appended.ok()) {
    CommandResult r;
    r.case_id = case_id;
    r.version = appended->last_version.value();
    r.position = appended->last_position.value();
    r.deduplicated = appended->deduplicated;
    r.event_ids = appended->event_ids;
    return std::optional<CommandResult>(std::move(r));
  }
  // A twin of this request (same event id) was written between our check
  // and our append: answer as it was answered, if it was the same request.
  if (appended.status().IsAlreadyExists() && options.event_id) {
    ASSIGN_OR_RETURN(std::optional<CommandResult> twin,
                     FindRetry(case_id, options));
    if (twin) return twin;
  }
  // Someone else wrote to the case between our read and our append. With a
  // pinned version that is the caller's conflict; otherwise decide again
  // (nullopt) on the new state.
  if (!appended.status().IsAborted() || options.expected_version ||
      attempt >= kAttempts) {
    return appended.status();
  }
  return std::optional<CommandResult>();
}

bool CaseService::Erases(std::string_view command) {
  return command == "approve-erasure" || command == "apply-retention";
}

StatusOr<CommandResult> CaseService::CarryOutErasure(const std::string& case_id,
                                                     CommandResult r) const {
  for (const EventId& id : r.event_ids) {
    ASSIGN_OR_RETURN(RecordedEvent e, store_.ReadEvent(id));
    if (e.type != "PersonalDataErased") continue;
    const Json payload = ParseStoredJson(e.payload);
    if (payload.is_discarded()) {
      return Status::Corruption("event " + id.ToString() +
                                " has a payload that is not JSON");
    }
    const keys::KeyStore::PlannedErasure plan{case_id, ErasedKeyScope(payload),
                                              id.ToString()};
    Status s = sealer_.keys().Destroy(case_id, plan.scope, plan.event_id);
    if (s.ok()) s = sealer_.keys().DropPlannedErasure(plan);
    if (!s.ok()) {
      return Status::Unavailable(
          "the erasure is recorded (event " + id.ToString() +
          ") but its keys are not destroyed yet (" + s.message() +
          "): send the same request again (same Idempotency-Key), or "
          "restart, which finishes it");
    }
  }
  return r;
}

StatusOr<CommandResult> CaseService::Execute(const std::string& case_id,
                                             const std::string& command,
                                             const Json& body,
                                             const domain::Actor& actor,
                                             const CommandOptions& options) {
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(Prepared p,
                     Prepare(case_id, command, body, actor, options));
    if (p.retry) {
      if (Erases(command)) return CarryOutErasure(case_id, std::move(*p.retry));
      return std::move(*p.retry);
    }
    ASSIGN_OR_RETURN(
        std::optional<CommandResult> done,
        Finish(case_id, options, attempt,
               store_.Append(case_id, p.expected, std::move(p.events))));
    if (done) {
      if (Erases(command)) return CarryOutErasure(case_id, std::move(*done));
      return std::move(*done);
    }
  }
}

void CaseService::ExecuteAsync(std::string case_id, std::string command,
                               Json body, domain::Actor actor,
                               CommandOptions options, Executor executor,
                               CommandCallback done, int attempt) {
  auto prepared = Prepare(case_id, command, body, actor, options);
  if (!prepared.ok()) return done(prepared.status());
  if (prepared->retry) {
    if (Erases(command)) {
      return done(CarryOutErasure(case_id, std::move(*prepared->retry)));
    }
    return done(std::move(*prepared->retry));
  }
  std::vector<ProposedEvent> events = std::move(prepared->events);
  const ExpectedVersion expected = prepared->expected;
  store_.AppendAsync(
      case_id, expected, std::move(events),
      [this, case_id, command = std::move(command), body = std::move(body),
       actor = std::move(actor), options = std::move(options), executor,
       done = std::move(done),
       attempt](StatusOr<AppendResult> appended) mutable {
        // On the store's writer thread: hand the rest to the executor.
        executor([this, case_id = std::move(case_id),
                  command = std::move(command), body = std::move(body),
                  actor = std::move(actor), options = std::move(options),
                  executor, done = std::move(done), attempt,
                  appended = std::move(appended)]() mutable {
          auto finished =
              Finish(case_id, options, attempt, std::move(appended));
          if (!finished.ok()) return done(finished.status());
          if (*finished) {
            if (Erases(command)) {
              return done(CarryOutErasure(case_id, std::move(**finished)));
            }
            return done(std::move(**finished));
          }
          ExecuteAsync(std::move(case_id), std::move(command), std::move(body),
                       std::move(actor), std::move(options),
                       std::move(executor), std::move(done), attempt + 1);
        });
      });
}

}  // namespace caseledger::service

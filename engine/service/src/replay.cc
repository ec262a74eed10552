#include "caseledger/service/replay.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;

// Calls `visit` for each event of the case within `point`, in order.
template <typename Visit>
Status ForEachEvent(const EventStore& store, const std::string& case_id,
                    const ReplayPoint& point, Visit visit) {
  RETURN_IF_ERROR(ValidateStreamId(case_id));
  return ForEachInStream(store, case_id, StreamVersion(1),
                         point.at_version.value_or(0),
                         [&](const RecordedEvent& e) -> Status {
                           // Only what had been recorded by then.
                           if (point.until && e.recorded_at > *point.until) {
                             return Status::OK();
                           }
                           return visit(e);
                         });
}

// Why a decision was taken, in the decider's words, where the event says.
Json Why(const Json& payload) {
  for (const char* key : {"rationale", "reason_detail", "change_reason",
                          "reason", "finding", "what_changes"}) {
    auto it = payload.find(key);
    if (it != payload.end() && it->is_string()) return *it;
  }
  return nullptr;
}

}  // namespace

StatusOr<Json> ReplayState(const EventStore& store, const CaseService& service,
                           const std::string& case_id,
                           const ReplayPoint& point) {
  domain::CaseState state;
  RETURN_IF_ERROR(ForEachEvent(
      store, case_id, point, [&](const RecordedEvent& e) -> Status {
        ASSIGN_OR_RETURN(domain::DomainEvent d, service.ToDomainEvent(e));
        state = domain::Evolve(std::move(state), d);
        return Status::OK();
      }));
  if (state.version == 0) {
    return Status::NotFound("case " + case_id + " has no event at that point");
  }
  return domain::ToJson(case_id, state);
}

StatusOr<Json> ReplaySteps(const EventStore& store, const CaseService& service,
                           const std::string& case_id,
                           const ReplayPoint& point) {
  domain::CaseState state;
  Json before = domain::ToJson(case_id, state);
  Json steps = Json::array();
  RETURN_IF_ERROR(ForEachEvent(
      store, case_id, point, [&](const RecordedEvent& e) -> Status {
        // Opened: each step shows what was recorded, as the reader may.
        ASSIGN_OR_RETURN(domain::DomainEvent d, service.ToOpenedEvent(e));
        state = domain::Evolve(std::move(state), d);
        Json after = domain::ToJson(case_id, state);
        steps.push_back({{"version", e.version.value()},
                         {"position", e.position.value()},
                         {"event_id", e.event_id.ToString()},
                         {"type", e.type},
                         {"who", {{"id", e.actor.id}, {"role", e.actor.role}}},
                         {"recorded_at", FormatTimestamp(e.recorded_at)},
                         {"occurred_at", FormatTimestamp(e.occurred_at)},
                         {"why", Why(d.payload)},
                         {"payload", d.payload},
                         {"state_after", after},
                         {"changes", Json::diff(before, after)}});
        before = std::move(after);
        return Status::OK();
      }));
  if (steps.empty()) {
    return Status::NotFound("case " + case_id + " has no event at that point");
  }
  return Json{{"case_id", case_id}, {"steps", steps}};
}

}  // namespace caseledger::service

#include "caseledger/service/replay.h"

#include "caseledger/service/access.h"

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

namespace {

// Whether `j` names the person `ref`: a member whose name holds
// "person_ref" (person_ref, about_person_ref, person_refs, ...) with `ref`
// as its value or in its array.
bool NamesPerson(const Json& j, const std::string& ref) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k.find("person_ref") != std::string::npos) {
        if (v.is_string() && v.get_ref<const std::string&>() == ref) {
          return true;
        }
        if (v.is_array()) {
          for (const auto& x : v) {
            if (x.is_string() && x.get_ref<const std::string&>() == ref) {
              return true;
            }
          }
        }
      }
      if (NamesPerson(v, ref)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (NamesPerson(v, ref)) return true;
    }
  }
  return false;
}

}  // namespace

StatusOr<Json> ExportCase(const EventStore& store, const CaseService& service,
                          const std::string& case_id,
                          const std::optional<std::string>& person_ref) {
  RETURN_IF_ERROR(ValidateStreamId(case_id));
  domain::CaseState state;
  Json events = Json::array();
  RETURN_IF_ERROR(ForEachInStream(
      store, case_id, StreamVersion(1), 0,
      [&](const RecordedEvent& e) -> Status {
        ASSIGN_OR_RETURN(domain::DomainEvent d, service.ToOpenedEvent(e));
        state = domain::Evolve(std::move(state), d);
        if (person_ref && !NamesPerson(d.payload, *person_ref)) {
          return Status::OK();
        }
        events.push_back(
            {{"event_id", e.event_id.ToString()},
             {"version", e.version.value()},
             {"type", e.type},
             {"recorded_at", FormatTimestamp(e.recorded_at)},
             {"occurred_at", FormatTimestamp(e.occurred_at)},
             {"actor", {{"id", e.actor.id}, {"role", e.actor.role}}},
             {"payload", std::move(d.payload)}});
        return Status::OK();
      }));
  if (state.version == 0) {
    return Status::NotFound("no case " + case_id);
  }
  if (person_ref && !state.person_refs.count(*person_ref)) {
    return Status::NotFound("no person " + *person_ref + " in case " + case_id);
  }
  Json out = {
      {"case_id", case_id},
      {"scope", person_ref ? "person" : "case"},
      {"version", state.version},
      {"state", domain::ToJson(case_id, state)},
      {"events", std::move(events)},
      {"notice", "Everything this system holds about the " +
                     std::string(person_ref ? "person" : "case") +
                     ", for review before release: remove other people's "
                     "information and whatever an exemption covers first."}};
  if (person_ref) {
    out["person_ref"] = *person_ref;
  } else {
    ASSIGN_OR_RETURN(std::vector<AccessRecord> reads,
                     ReadAccessLog(store, case_id));
    Json log = Json::array();
    for (const AccessRecord& r : reads) {
      log.push_back({{"who", {{"id", r.actor_id}, {"role", r.role}}},
                     {"when", FormatTimestamp(r.when)},
                     {"what", r.what}});
    }
    out["access_log"] = std::move(log);
  }
  return out;
}

}  // namespace caseledger::service

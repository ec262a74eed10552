// Replay, for governance reviewers: a case as it stood after a version or at
// a moment, and a step-through of its events with the state after each and
// what changed. Computed from the log (never from a projection), so it shows
// exactly what the record held.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "caseledger/service/case_service.h"

namespace caseledger::service {

struct ReplayPoint {
  std::optional<uint64_t> at_version;  // after this version (inclusive)
  std::optional<Timestamp> until;      // events recorded at or before this
};

// The state after the last event within `point` (all events if neither is
// set). kNotFound if the case has no event at all.
StatusOr<nlohmann::json> ReplayState(const EventStore& store,
                                     const CaseService& service,
                                     const std::string& case_id,
                                     const ReplayPoint& point);

// Each event within `point`, in order: who, when, why, the event, the state
// after it and an RFC 6902 JSON Patch from the state before.
StatusOr<nlohmann::json> ReplaySteps(const EventStore& store,
                                     const CaseService& service,
                                     const std::string& case_id,
                                     const ReplayPoint& point);

// Subject access (UK GDPR Art 15): everything the log holds about a case,
// or about one person of it (`person_ref`), as one document for the DSL to
// review and redact before release; third parties' details and whatever an
// exemption covers are the reviewer's to remove (safeguarding.md b.6).
// Personal fields are opened ("[erased]" where erased). Returns
// {"case_id", "scope": "case" | "person", "person_ref"?, "version",
//  "state" (the case now), "events": [every event, or those that name the
//  person: who, when, type, payload], "access_log" (whole case only:
//  who read it, when, what), "notice"}. kNotFound if the case has no
// event, or no such person.
StatusOr<nlohmann::json> ExportCase(
    const EventStore& store, const CaseService& service,
    const std::string& case_id, const std::optional<std::string>& person_ref);

}  // namespace caseledger::service

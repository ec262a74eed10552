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

}  // namespace caseledger::service

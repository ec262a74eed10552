#include "engine/domain/src/upcasters.h"

namespace caseledger::domain::internal {
namespace {

using Json = nlohmann::json;

// RiskAssessed v1 -> v2: the statutory return's combined SG2c code
// `sac_risk_outcome` splits into `risk_finding` and `action_taken`; every
// other field is copied unchanged. (schemas/README.md has the table.)
StatusOr<Json> RiskAssessedV1ToV2(Json payload) {
  static const std::map<std::string, std::pair<const char*, bool>> kSplit = {
      {"risk_identified_action_taken", {"risk_identified", true}},
      {"risk_identified_no_action_taken", {"risk_identified", false}},
      {"inconclusive_action_taken", {"inconclusive", true}},
      {"inconclusive_no_action_taken", {"inconclusive", false}},
      {"no_risk_identified_action_taken", {"no_risk_identified", true}},
      {"no_risk_identified_no_action_taken", {"no_risk_identified", false}},
      {"enquiry_ceased_at_individuals_request_no_action_taken",
       {"enquiry_ceased_at_individuals_request", false}},
  };
  if (!payload.is_object() || !payload.contains("sac_risk_outcome") ||
      !payload["sac_risk_outcome"].is_string()) {
    return Status::InvalidField("/sac_risk_outcome",
                                "RiskAssessed v1 needs sac_risk_outcome");
  }
  auto it = kSplit.find(payload["sac_risk_outcome"].get<std::string>());
  if (it == kSplit.end()) {
    return Status::InvalidField("/sac_risk_outcome",
                                "unknown RiskAssessed v1 sac_risk_outcome");
  }
  payload.erase("sac_risk_outcome");
  payload["risk_finding"] = it->second.first;
  payload["action_taken"] = it->second.second;
  return payload;
}

// LearningScreened v1 -> v2: v2 adds `released` (the text the system
// released on approval). A v1 approval released no recorded text, so its
// payload is a v2 payload as it is: the learning feed shares nothing of it.
StatusOr<Json> LearningScreenedV1ToV2(Json payload) { return payload; }

}  // namespace

UpcasterMap Upcasters() {
  UpcasterMap m;
  m[{"RiskAssessed", 1}] = RiskAssessedV1ToV2;
  m[{"LearningScreened", 1}] = LearningScreenedV1ToV2;
  return m;
}

}  // namespace caseledger::domain::internal

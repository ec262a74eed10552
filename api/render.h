// The JSON the API answers with for the read models' typed results. The
// field names are the API's (schemas/openapi.yaml); the read models know
// nothing of them.
#pragma once

#include <nlohmann/json.hpp>

#include "caseledger/projections/read_models.h"

namespace caseledger::api {

nlohmann::json ToJson(const projections::GovernanceView& view);
nlohmann::json ToJson(const projections::GovernanceOverview& overview);
nlohmann::json ToJson(const projections::AuditSample& sample);
nlohmann::json ToJson(const projections::LearningSummary& summary);

}  // namespace caseledger::api

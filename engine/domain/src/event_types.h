// The event types of cases: one per command, from decide()'s command table.
// Internal to the domain.
#pragma once

#include <string_view>
#include <vector>

namespace caseledger::domain::internal {

const std::vector<std::string_view>& CaseEventTypes();

}  // namespace caseledger::domain::internal

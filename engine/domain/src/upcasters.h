// The upcasters: pure, total functions from a valid payload of version N to
// a valid payload of version N+1 (schemas/README.md, "Versioning"). Stored
// events are never rewritten; readers upcast on read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "caseledger/status.h"

namespace caseledger::domain::internal {

using Upcaster = std::function<StatusOr<nlohmann::json>(nlohmann::json)>;
// (type, from version) -> the upcaster to version + 1.
using UpcasterMap = std::map<std::pair<std::string, uint32_t>, Upcaster>;

UpcasterMap Upcasters();

}  // namespace caseledger::domain::internal

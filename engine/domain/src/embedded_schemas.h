// The JSON Schemas of schemas/events/, compiled into the binary by CMake
// (engine/domain/CMakeLists.txt generates the definition).
#pragma once

#include <string_view>
#include <vector>

namespace caseledger::domain::internal {

struct EmbeddedFile {
  std::string_view name;  // e.g. "ConcernReported.v1.json"
  std::string_view text;
};

const std::vector<EmbeddedFile>& EmbeddedSchemas();

}  // namespace caseledger::domain::internal

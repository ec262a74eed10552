// The console's files (api/console/), compiled into the binary by CMake
// (api/CMakeLists.txt generates the definition). Internal to api.
#pragma once

#include <string_view>
#include <vector>

namespace caseledger::api {

struct ConsoleAsset {
  std::string_view name;  // e.g. "console.js"
  std::string_view text;
};

const std::vector<ConsoleAsset>& ConsoleAssets();

}  // namespace caseledger::api

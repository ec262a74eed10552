// Parsing stored payloads (JSON the engine validated when it was appended)
// into nlohmann/json documents, fast. Internal to the service library.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace caseledger::service::internal {

// The same document nlohmann::json::parse(text, nullptr, false) makes (a
// discarded value when `text` is not JSON), built from simdjson's parse:
// about 2.5x faster on stored payloads (bench/RESULTS.md). Whatever
// simdjson cannot parse, or might read differently from nlohmann (too deep,
// an integer beyond 64 bits, a negative zero), is parsed by nlohmann
// instead.
nlohmann::json ParseStoredJson(std::string_view text);

}  // namespace caseledger::service::internal

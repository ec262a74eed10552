// Reading a request: headers, the JSON body (media type, depth), If-Match
// and Idempotency-Key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/router.h"
#include "caseledger/domain/policy.h"
#include "caseledger/status.h"
#include "caseledger/types.h"

namespace caseledger::api {

// The value of a request header (names are lower case), or "".
std::string Header(const HttpRequest& req, const std::string& name);

// Deepest nesting of arrays and objects, outside strings; stops counting
// past `limit`.
size_t JsonDepth(const std::string& text, size_t limit);

// Parses a JSON request body, or says why not.
StatusOr<nlohmann::json> ParseBody(const HttpRequest& req, size_t max_depth,
                                   HttpResponse* error);

// A version as an entity tag: "N".
std::string Quote(uint64_t version);

// If-Match: "N" (or N) -> N; nothing if empty; `*bad` if not a version.
std::optional<uint64_t> ParseIfMatch(const std::string& value, bool* bad);

// The event id an Idempotency-Key stands for: a version 8 UUID from the
// SHA-256 of the actor and the key, so one client's keys never collide with
// another's and a retry of the same request finds the event it wrote.
// Nothing if the key is not 1 to 255 visible ASCII characters.
std::optional<EventId> IdempotentEventId(const domain::Actor& actor,
                                         const std::string& key);

}  // namespace caseledger::api

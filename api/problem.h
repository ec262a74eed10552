// Errors as HTTP answers: the one table from an engine or domain status to
// RFC 9457 problem+json, and small JSON answers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "api/router.h"
#include "caseledger/status.h"

namespace caseledger::api {

// A JSON answer.
HttpResponse JsonResponse(int status, const nlohmann::json& body);

// `r` (a problem+json answer) with the JSON pointer of the offending field,
// as "pointer" and as the one entry of "errors" (ProblemFromStatus lists
// every field a status names there).
HttpResponse WithPointer(HttpResponse r, const std::string& pointer);

// How a status is to be read, besides its code.
struct ProblemContext {
  // The client sent If-Match: a version conflict is 412, not 409.
  bool pinned = false;
  // The client sent an Idempotency-Key: an event id already used by
  // another request is 422 (the key was reused), not 409.
  bool keyed = false;
};

// The one place where an engine or domain status becomes an HTTP answer.
HttpResponse ProblemFromStatus(const Status& status, ProblemContext context);
inline HttpResponse ProblemFromStatus(const Status& status,
                                      bool pinned = false) {
  return ProblemFromStatus(status, ProblemContext{pinned, false});
}

}  // namespace caseledger::api

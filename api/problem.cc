#include "api/problem.h"

#include <utility>

#include "api/request.h"

namespace caseledger::api {

using Json = nlohmann::json;

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse WithPointer(HttpResponse r, const std::string& pointer) {
  Json body = Json::parse(r.body);
  body["pointer"] = pointer;
  body["errors"] = Json::array(
      {{{"pointer", pointer}, {"detail", body.value("detail", "")}}});
  r.body = body.dump();
  return r;
}

namespace {

// Names the field(s) a refusal is about: "pointer" (the first) and
// "errors", every one with its JSON pointer and why (an RFC 9457
// extension member), so a form can mark each field.
HttpResponse WithFields(HttpResponse r, const Status& s) {
  const std::vector<FieldError> fields = s.field_errors();
  if (fields.empty()) return r;
  Json body = Json::parse(r.body);
  body["pointer"] = fields[0].pointer;
  Json errors = Json::array();
  for (const FieldError& f : fields) {
    errors.push_back({{"pointer", f.pointer}, {"detail", f.detail}});
  }
  body["errors"] = std::move(errors);
  r.body = body.dump();
  return r;
}

}  // namespace

HttpResponse ProblemFromStatus(const Status& s, ProblemContext context) {
  const bool pinned = context.pinned;
  switch (s.code()) {
    case StatusCode::kOk:
      return Problem(500, "Internal Server Error", "no error to report");
    case StatusCode::kInvalidArgument:
      return WithFields(Problem(400, "Bad Request", s.message()), s);
    case StatusCode::kNotFound:
      return Problem(404, "Not Found", s.message());
    case StatusCode::kAlreadyExists:
      if (context.keyed) {
        return Problem(422, "Unprocessable Content",
                       "this Idempotency-Key was used for a different "
                       "request");
      }
      return Problem(409, "Conflict", s.message());
    case StatusCode::kAborted: {
      HttpResponse r =
          Problem(pinned ? 412 : 409,
                  pinned ? "Precondition Failed" : "Conflict", s.message());
      if (s.current_version()) {
        Json body = Json::parse(r.body);
        body["current_version"] = *s.current_version();
        r.body = body.dump();
        r.headers.emplace_back("ETag", Quote(*s.current_version()));
      }
      return r;
    }
    case StatusCode::kPermissionDenied:
      return Problem(403, "Forbidden", s.message());
    case StatusCode::kFailedPrecondition:
      return WithFields(Problem(409, "Conflict", s.message()), s);
    case StatusCode::kUnavailable: {
      HttpResponse r = Problem(503, "Service Unavailable", s.message());
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    case StatusCode::kNoSpace: {
      // RFC 4918 11.5; the store resumes by itself once space is freed.
      HttpResponse r = Problem(
          507, "Insufficient Storage",
          "the server's storage is full: nothing was written. It resumes by "
          "itself once an operator frees space; retry later");
      r.headers.emplace_back("Retry-After", "30");
      return r;
    }
    case StatusCode::kIOError:
    case StatusCode::kCorruption:
      // Storage detail stays in the server's log, not in the answer.
      return Problem(500, "Internal Server Error",
                     "the store could not complete the request");
  }
  return Problem(500, "Internal Server Error", "unknown error");
}

}  // namespace caseledger::api

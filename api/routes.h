// The case routes' handlers: one class, its members defined by resource in
// authorize.cc (authentication, authorisation, the body), command_routes.cc,
// case_read_routes.cc, list_routes.cc, governance_routes.cc,
// learning_routes.cc and admin_routes.cc. case_routes.cc is the route
// table. Internal to api.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api/case_routes.h"
#include "api/document_cache.h"
#include "api/problem.h"
#include "api/request.h"
#include "caseledger/domain/policy.h"
#include "caseledger/service/access.h"

namespace caseledger::api {

using Json = nlohmann::json;
using domain::Actor;
using domain::Read;

// "YYYY-MM" before which learning is released at `now` ("" when at once).
std::string ReleasedBefore(Timestamp now, uint64_t delay_months);

class Routes {
 public:
  explicit Routes(CaseRouteDeps& d) : d_(d) {}

  // Authenticates by bearer token or, failing one, by a console session's
  // cookie (a state-changing request must then come from the server's own
  // origin, or is answered 403); otherwise answers 401.
  std::optional<Actor> Authenticate(const HttpRequest& req,
                                    const Router::Respond& respond);
  // The request's Origin is this server's own (scheme and Host).
  bool SameOrigin(const HttpRequest& req) const;

  // POST /v1/session {"token": ...}: signs in, setting the session cookie.
  // GET /v1/session: who is signed in. DELETE /v1/session: signs out.
  void SignIn(const HttpRequest& req, const Router::Respond& respond);
  // For sign-in and sign-out: the server has sessions, and a request from
  // a browser comes from this server's own origin; otherwise answers.
  bool ConsoleRequest(const HttpRequest& req, const char* what,
                      const Router::Respond& respond);
  void GetSession(const HttpRequest& req, const Router::Respond& respond);
  void SignOut(const HttpRequest& req, const Router::Respond& respond);

  // GET /v1/schemas/{file}: a JSON Schema shipped with this build, for
  // clients that build forms from it (any signed-in caller).
  void GetSchema(const HttpRequest& req, const std::string& file,
                 const Router::Respond& respond);

  // The request's JSON body, or answers why not (415, 400).
  std::optional<Json> ReadBody(const HttpRequest& req,
                               const Router::Respond& respond);

  // For routes that take no parameters: no body, or {}; otherwise answers
  // 400 (or 415) and returns false.
  bool NoParameters(const HttpRequest& req, const char* what,
                    const Router::Respond& respond);

  // The month before which learning is released now ("" : everything).
  std::string ReleasedNow() const;

  static HttpResponse Forbidden();

  // ?limit=N, from 1 to `max`, into *limit (unchanged when absent);
  // otherwise answers 400 and returns false.
  static bool QueryLimit(std::map<std::string, std::string>& query, size_t max,
                         size_t* limit, const Router::Respond& respond);

  // For the admin routes: authenticates, and answers 403 unless an admin.
  std::optional<Actor> AuthorizeAdmin(const HttpRequest& req,
                                      const Router::Respond& respond);

  // For routes served from the read models: authenticates, checks the
  // role's read, and that there are read models; otherwise answers.
  std::optional<Actor> AuthorizeModelRead(const HttpRequest& req, Read read,
                                          const Router::Respond& respond);

  // POST /v1/cases and POST /v1/cases/{id}/commands/{command}.
  void Command(const HttpRequest& req, std::string case_id, std::string command,
               const Router::Respond& respond);

  // Loads the case and checks that the actor may make `read` of it. A
  // refusal never says whether the case exists unless the role may know.
  std::shared_ptr<const domain::CaseState> LoadForRead(
      const std::string& id, const Actor& actor, Read read,
      const Router::Respond& respond);

  void GetCase(const HttpRequest& req, const std::string& id,
               const Router::Respond& respond);

  void GetHistory(const HttpRequest& req, const std::string& id,
                  const Router::Respond& respond);

  void GetVerify(const HttpRequest& req, const std::string& id,
                 const Router::Respond& respond);

  // GET /v1/cases/{id}/export[?person=REF]: subject access, everything held
  // about the case or one person (service::ExportCase); DSL and
  // alternative DSL; recorded in the access log as "export".
  void GetExport(const HttpRequest& req, const std::string& id,
                 const Router::Respond& respond);

  // GET /v1/cases: a page of case summaries from the read model, filtered
  // by stage, lead, urgency, category, or acknowledgement overdue; a
  // reporter sees only the cases they reported; no one sees a case they are
  // barred from. ?after_position=N waits (up to 2 s) for the read model to
  // include the caller's own write.
  void ListCases(const HttpRequest& req, const Router::Respond& respond);

  // GET /v1/governance/overview, /v1/governance/{view},
  // /v1/governance/sample?month=YYYY-MM[&size=N&seed=S]. Case ids only, and
  // none the reader is barred from.
  void GetGovernance(const HttpRequest& req, const std::string& view,
                     const Router::Respond& respond);
  // Drops the items (each with a case_id) of cases `actor` is barred from.
  template <typename Item>
  Status KeepUnbarred(std::vector<Item>* items,
                      const domain::Actor& actor) const;

  // GET /v1/learning/feed?after=SEQ&limit=N: the anonymised feed.
  void GetFeed(const HttpRequest& req, const Router::Respond& respond);

  // GET /v1/learning/stream: the feed as Server-Sent Events, from the
  // record after Last-Event-ID (a reconnecting client's last seen sequence
  // number) or ?after=SEQ, then live as records are added.
  void GetFeedStream(const HttpRequest& req, const Router::Respond& respond);

  // POST /v1/admin/tokens/revoke {"token": ...} or {"actor_id": ...}:
  // revokes at once, on the log; open streams of the token end.
  void RevokeToken(const HttpRequest& req, const Router::Respond& respond);

  // POST /v1/admin/backups (no body, or {}): a consistent copy of the store
  // in the configured backup directory.
  void CreateBackup(const HttpRequest& req, const Router::Respond& respond);

  // POST /v1/admin/store/resume (no body, or {}): appends again after a
  // failed write, now rather than at the store's next own try. 200 with the
  // log position when appends may go on; otherwise the failure (507 while
  // the disk is still full).
  void ResumeStore(const HttpRequest& req, const Router::Respond& respond);

  // GET /v1/admin/notifications[?status=pending|delivered|dead|withheld]
  // [&before=ID][&limit=N]: the alerts planned, newest first, each with
  // every attempt and its outcome, and the outbox's state.
  void ListNotifications(const HttpRequest& req,
                         const Router::Respond& respond);

  // GET /v1/learning/summary: counts with small numbers suppressed.
  void GetSummary(const HttpRequest& req, const Router::Respond& respond);

  // Every read of a case's contents is recorded (who, when, what, which
  // version) before the answer goes out: no record, no read. The records
  // wait for the store's group commit, never on an I/O thread; a failure
  // to record answers with the failure instead.
  void RecordThenRespond(const Actor& actor, service::CaseReadKind what,
                         const std::vector<service::CaseShown>& shown,
                         HttpResponse response, const Router::Respond& respond);

  // GET /v1/cases/{id}/access-log: who read the case, when, what.
  void GetAccessLog(const HttpRequest& req, const std::string& id,
                    const Router::Respond& respond);

  // GET /v1/cases/{id}/replay?at=VERSION|until=TIME, and .../replay/steps.
  void GetReplay(const HttpRequest& req, const std::string& id, bool steps,
                 const Router::Respond& respond);

  // POST /v1/cases: the server names the case, an opaque, unguessable id.
  void Report(const HttpRequest& req, const Router::Respond& respond);
  void GetReplayState(const HttpRequest& req, const std::string& id,
                      const Router::Respond& respond);
  void GetReplaySteps(const HttpRequest& req, const std::string& id,
                      const Router::Respond& respond);

 private:
  CaseRouteDeps& d_;
  DocumentCache documents_;
};

}  // namespace caseledger::api

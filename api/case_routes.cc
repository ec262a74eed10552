#include "api/case_routes.h"

#include <memory>
#include <string>
#include <utility>

#include "api/routes.h"

namespace caseledger::api {

void AddCaseRoutes(Router& router, CaseRouteDeps& deps) {
  auto routes = std::make_shared<Routes>(deps);
  // The request log names the actor behind a valid token (never the token).
  // A console session counts as that person's.
  router.SetIdentify([&deps](const HttpRequest& req) {
    auto it = req.headers.find("authorization");
    if (it == req.headers.end()) {
      auto cookie = req.headers.find("cookie");
      if (cookie == req.headers.end() || deps.sessions == nullptr ||
          SessionIdFromCookie(cookie->second).empty()) {
        return std::string("-");
      }
      auto actor = deps.sessions->Authenticate(cookie->second);
      return actor ? actor->id : std::string("ended-session");
    }
    auto actor = deps.tokens.Authenticate(it->second);
    return actor ? actor->id : std::string("invalid-token");
  });
  router.AddAsync("GET", "/v1/governance/overview",
                  [routes](const HttpRequest& req, const PathParams&,
                           const Router::Respond& respond) {
                    routes->GetGovernance(req, "overview", respond);
                  });
  router.AddAsync("GET", "/v1/governance/sample",
                  [routes](const HttpRequest& req, const PathParams&,
                           const Router::Respond& respond) {
                    routes->GetGovernance(req, "sample", respond);
                  });
  router.AddAsync("GET", "/v1/governance/{view}",
                  [routes](const HttpRequest& req, const PathParams& p,
                           const Router::Respond& respond) {
                    routes->GetGovernance(req, p.at("view"), respond);
                  });
  // Routes that call one member, on the collection or on one case.
  using OnCollection =
      void (Routes::*)(const HttpRequest&, const Router::Respond&);
  using OnCase = void (Routes::*)(const HttpRequest&, const std::string&,
                                  const Router::Respond&);
  auto collection = [&](const char* method, const char* pattern,
                        OnCollection fn) {
    router.AddAsync(method, pattern,
                    [routes, fn](const HttpRequest& req, const PathParams&,
                                 const Router::Respond& respond) {
                      ((*routes).*fn)(req, respond);
                    });
  };
  auto one_case = [&](const char* pattern, OnCase fn) {
    router.AddAsync("GET", pattern,
                    [routes, fn](const HttpRequest& req, const PathParams& p,
                                 const Router::Respond& respond) {
                      ((*routes).*fn)(req, p.at("id"), respond);
                    });
  };
  collection("GET", "/v1/learning/feed", &Routes::GetFeed);
  collection("GET", "/v1/learning/summary", &Routes::GetSummary);
  collection("GET", "/v1/learning/stream", &Routes::GetFeedStream);
  collection("GET", "/v1/cases", &Routes::ListCases);
  collection("POST", "/v1/cases", &Routes::Report);
  collection("POST", "/v1/admin/tokens/revoke", &Routes::RevokeToken);
  collection("POST", "/v1/admin/backups", &Routes::CreateBackup);
  collection("POST", "/v1/admin/store/resume", &Routes::ResumeStore);
  collection("GET", "/v1/admin/notifications", &Routes::ListNotifications);
  collection("POST", "/v1/session", &Routes::SignIn);
  collection("GET", "/v1/session", &Routes::GetSession);
  collection("DELETE", "/v1/session", &Routes::SignOut);
  router.AddAsync("GET", "/v1/schemas/{file}",
                  [routes](const HttpRequest& req, const PathParams& p,
                           const Router::Respond& respond) {
                    routes->GetSchema(req, p.at("file"), respond);
                  });
  router.AddAsync("POST", "/v1/cases/{id}/commands/{command}",
                  [routes](const HttpRequest& req, const PathParams& p,
                           const Router::Respond& respond) {
                    if (p.at("command") == "report") {
                      respond(Problem(404, "Not Found",
                                      "report a concern with POST /v1/cases"));
                      return;
                    }
                    routes->Command(req, p.at("id"), p.at("command"), respond);
                  });
  one_case("/v1/cases/{id}", &Routes::GetCase);
  one_case("/v1/cases/{id}/history", &Routes::GetHistory);
  one_case("/v1/cases/{id}/replay", &Routes::GetReplayState);
  one_case("/v1/cases/{id}/replay/steps", &Routes::GetReplaySteps);
  one_case("/v1/cases/{id}/access-log", &Routes::GetAccessLog);
  one_case("/v1/cases/{id}/export", &Routes::GetExport);
  one_case("/v1/cases/{id}/verify", &Routes::GetVerify);
}

}  // namespace caseledger::api

// The console's sign-in, its session, and the schemas its forms are built
// from.
#include <spdlog/spdlog.h>

#include <utility>

#include "api/routes.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/domain/decide.h"

namespace caseledger::api {

namespace {

// What the console may offer a signed-in role: the commands it may send
// and the reads it may make (case-independent; a case may still refuse).
Json Abilities(const Actor& actor, const domain::EventCatalog& catalog) {
  Json commands = Json::array();
  Json events = Json::object();
  Json owned = Json::object();
  for (const std::string& c : domain::CommandNames()) {
    if (!domain::MayCommand(actor.role, c)) continue;
    commands.push_back(c);
    const std::string type = domain::EventTypeOf(c);
    events[c] =
        type + ".v" + std::to_string(catalog.CurrentVersion(type)) + ".json";
    if (!domain::ServerOwnedFields(c).empty()) {
      owned[c] = domain::ServerOwnedFields(c);
    }
  }
  Json reads = Json::array();
  for (const auto& [read, name] : std::vector<std::pair<Read, const char*>>{
           {Read::kCaseList, "case_list"},
           {Read::kCaseState, "case_state"},
           {Read::kCaseHistory, "case_history"},
           {Read::kCaseReplay, "case_replay"},
           {Read::kCaseVerify, "case_verify"},
           {Read::kCaseAccessLog, "case_access_log"},
           {Read::kCaseExport, "case_export"},
           {Read::kGovernance, "governance"},
           {Read::kLearningFeed, "learning_feed"},
           {Read::kAdmin, "admin"}}) {
    if (domain::MayRead(actor.role, read)) reads.push_back(name);
  }
  return {{"commands", std::move(commands)},
          {"command_schemas", std::move(events)},
          {"server_owned", std::move(owned)},
          {"reads", std::move(reads)}};
}

}  // namespace

bool Routes::ConsoleRequest(const HttpRequest& req, const char* what,
                            const Router::Respond& respond) {
  if (d_.sessions == nullptr) {
    respond(Problem(404, "Not Found", "this server has no console sessions"));
    return false;
  }
  if (!Header(req, "origin").empty() && !SameOrigin(req)) {
    respond(Problem(403, "Forbidden",
                    std::string(what) +
                        " from this server's own pages (the request's "
                        "Origin header did not match)"));
    return false;
  }
  return true;
}

void Routes::SignIn(const HttpRequest& req, const Router::Respond& respond) {
  // A browser always says where a POST comes from: a sign-in from another
  // site's page is refused (login forgery).
  if (!ConsoleRequest(req, "sign in", respond)) return;
  auto body = ReadBody(req, respond);
  if (!body) return;
  const Json* token = body->is_object() && body->contains("token")
                          ? &(*body)["token"]
                          : nullptr;
  if (token == nullptr || !token->is_string() || body->size() != 1) {
    HttpResponse r = Problem(400, "Bad Request",
                             "sign in with {\"token\": \"clt_...\"} and "
                             "nothing else");
    Json problem = Json::parse(r.body);
    problem["errors"] = Json::array(
        {{{"pointer", "/token"}, {"detail", "/token: the bearer token"}}});
    r.body = problem.dump();
    respond(std::move(r));
    return;
  }
  auto started = d_.sessions->Start(token->get<std::string>());
  if (!started) {
    respond(Problem(401, "Unauthorized",
                    "that token is not known or has been revoked"));
    return;
  }
  if (d_.logger) {
    d_.logger->info("console session started for {}", started->actor.id);
  }
  HttpResponse r;
  Json out = {{"actor_id", started->actor.id},
              {"role", domain::RoleName(started->actor.role)},
              {"idle_timeout_seconds", d_.sessions->idle().count()}};
  out.update(Abilities(started->actor, d_.service.catalog()));
  r.body = out.dump();
  r.headers.emplace_back("Set-Cookie", SessionCookie(started->id, d_.tls));
  respond(std::move(r));
}

void Routes::GetSession(const HttpRequest& req,
                        const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  HttpResponse r;
  Json out = {{"actor_id", actor->id}, {"role", domain::RoleName(actor->role)}};
  if (d_.sessions != nullptr) {
    out["idle_timeout_seconds"] = d_.sessions->idle().count();
  }
  out.update(Abilities(*actor, d_.service.catalog()));
  r.body = out.dump();
  respond(std::move(r));
}

void Routes::SignOut(const HttpRequest& req, const Router::Respond& respond) {
  if (!ConsoleRequest(req, "sign out", respond)) return;
  // Ending a session that has already ended is not an error: the browser's
  // cookie is cleared either way.
  d_.sessions->End(Header(req, "cookie"));
  HttpResponse r;
  r.status = 204;
  r.headers.emplace_back("Set-Cookie", SessionCookie("", d_.tls));
  respond(std::move(r));
}

void Routes::GetSchema(const HttpRequest& req, const std::string& file,
                       const Router::Respond& respond) {
  if (!Authenticate(req, respond)) return;
  auto text = domain::EventCatalog::SchemaDocument(file);
  if (!text) {
    respond(Problem(404, "Not Found", "no schema of that name"));
    return;
  }
  HttpResponse r;
  r.content_type = "application/schema+json";
  r.body = std::string(*text);
  respond(std::move(r));
}

}  // namespace caseledger::api

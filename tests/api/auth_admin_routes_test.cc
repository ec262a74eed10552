// Who may do what (tokens, roles, revocation), the request log, the admin
// routes (backups, a full disk), and the one error table.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

TEST_F(CaseRoutesTest, NoTokenIs401AndAWrongRoleIs403) {
  auto anon = client_->Send(http_verb::post, "/v1/cases", ReportBody().dump());
  EXPECT_EQ(anon.result_int(), 401);
  EXPECT_EQ(anon["WWW-Authenticate"], "Bearer");
  auto bogus = client_->Send(http_verb::get, "/v1/cases/case-1", "",
                             {{"Authorization", "Bearer clt_nope"}});
  EXPECT_EQ(bogus.result_int(), 401);
  EXPECT_EQ(Post("integration", "/v1/cases", ReportBody()).result_int(), 403);
  EXPECT_EQ(Post("admin", "/v1/cases", ReportBody()).result_int(), 403);
  Report();
  EXPECT_EQ(Get("integration", "/v1/cases/" + case_).result_int(), 403);
  EXPECT_EQ(Get("admin", "/v1/cases/" + case_).result_int(), 403);
  EXPECT_EQ(Get("reporter", "/v1/cases/" + case_ + "/history").result_int(),
            403);
  EXPECT_EQ(Command("reporter", "triage", Json::object()).result_int(), 403);
  EXPECT_EQ(store_->committed_position().value(), 8u);  // 7 tokens + report
}

TEST_F(CaseRoutesTest, ARevokedTokenFailsAtOnceAndEndsItsStream) {
  Report();
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  SseReader sse(server_->port(), token_["integration"]);
  ASSERT_TRUE(sse.ReadUntil("\nid: 1\n")) << sse.received();
  Ok(Get("dsl", "/v1/cases/" + case_));  // the token is cached now

  // Bad requests revoke nothing.
  EXPECT_EQ(
      Post("admin", "/v1/admin/tokens/revoke", Json::object()).result_int(),
      400);
  EXPECT_EQ(Post("admin", "/v1/admin/tokens/revoke",
                 {{"token", "clt_x"}, {"actor_id", "svc:feed"}})
                .result_int(),
            400);
  auto unknown =
      Post("admin", "/v1/admin/tokens/revoke", {{"token", "clt_not-a-token"}});
  EXPECT_EQ(unknown.result_int(), 404) << unknown.body();
  EXPECT_EQ(Post("dsl", "/v1/admin/tokens/revoke", {{"actor_id", "svc:feed"}})
                .result_int(),
            403);
  Ok(Get("dsl", "/v1/cases/" + case_));

  // By token: that token fails from the next request on.
  auto r = Post("admin", "/v1/admin/tokens/revoke", {{"token", token_["dsl"]}});
  Ok(r);
  EXPECT_EQ(Body(r)["revoked"], 1);
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_).result_int(), 401);
  Ok(Get("alt", "/v1/cases/" + case_));  // other tokens still work

  // By actor, while its stream is open: the stream ends.
  r = Post("admin", "/v1/admin/tokens/revoke", {{"actor_id", "svc:feed"}});
  Ok(r);
  EXPECT_EQ(Body(r)["revoked"], 1);
  EXPECT_TRUE(sse.ReadUntil("\r\n0\r\n\r\n")) << sse.received();
  EXPECT_EQ(Get("integration", "/v1/learning/feed").result_int(), 401);
  // Revoked is revoked: again is 404.
  EXPECT_EQ(Post("admin", "/v1/admin/tokens/revoke", {{"actor_id", "svc:feed"}})
                .result_int(),
            404);

  // A revocation written to the store by another writer (here: directly)
  // is honoured without a restart too.
  auto n = service::RevokeTokens(*store_, service_->catalog(), "",
                                 "user:reviewer-1", "test");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(Get("reviewer", "/v1/cases/" + case_).result_int(), 401);
  EXPECT_FALSE(service::RevokeTokens(*store_, service_->catalog(), "x", "y",
                                     "test")
                   .ok());  // one of two
  // Every revocation is an event on the token stream, by its admin.
  auto events = store_->ReadStream(service::kTokenStream, StreamVersion(1),
                                   Direction::kForward, 100);
  ASSERT_TRUE(events.ok());
  size_t revocations = 0;
  for (const auto& e : *events) {
    if (e.type != "TokenRevoked") continue;
    ++revocations;
    EXPECT_EQ(e.payload.find("clt_"), std::string::npos);  // hashes only
  }
  EXPECT_EQ(revocations, 3u);
  EXPECT_EQ(events->back().actor.id, "test");
}

TEST_F(CaseRoutesTest, TheRequestLogNamesRouteStatusAndActorButNoContent) {
  Report();
  Ok(Get("dsl", "/v1/cases/" + case_ + "?secret=query"));
  EXPECT_EQ(Get("integration", "/v1/cases/" + case_).result_int(), 403);
  client_->Send(http_verb::get, "/v1/cases", "",
                {{"Authorization", "Bearer not-a-token"}});
  server_->Shutdown();  // flushes: every request has been logged
  thread_.join();
  const std::string log = log_.str();
  EXPECT_NE(log.find("POST /v1/cases 201"), std::string::npos) << log;
  EXPECT_NE(log.find("actor=user:reporter-1"), std::string::npos) << log;
  EXPECT_NE(log.find("GET /v1/cases/{id} 200"), std::string::npos) << log;
  EXPECT_NE(log.find("GET /v1/cases/{id} 403"), std::string::npos) << log;
  EXPECT_NE(log.find("actor=svc:feed"), std::string::npos) << log;
  EXPECT_NE(log.find("actor=invalid-token"), std::string::npos) << log;
  // Never a case id, a query, a token or anything from a body.
  EXPECT_EQ(log.find(case_), std::string::npos) << log;
  EXPECT_EQ(log.find("secret"), std::string::npos) << log;
  EXPECT_EQ(log.find(token_["dsl"]), std::string::npos) << log;
  const Json report = ReportBody();
  EXPECT_EQ(log.find(report["facts"].get<std::string>().substr(0, 20)),
            std::string::npos);
}

// Every route, every role: the answer the policy promises.
TEST_F(CaseRoutesTest, AnAdminTakesABackupThatOpensAsAStoreOfItsOwn) {
  Report();
  auto r = Post("admin", "/v1/admin/backups", Json::object());
  ASSERT_EQ(r.result_int(), 201) << r.body();
  const Json made = Body(r);
  const uint64_t position = made["position"];
  EXPECT_GE(position, 1u);
  EXPECT_LE(position, store_->committed_position().value());
  {
    Options o;
    o.read_only = true;
    o.create_if_missing = false;
    auto copy = testing::OpenStore(made["backup"].get<std::string>(), o);
    ASSERT_NE(copy, nullptr);
    EXPECT_EQ(copy->committed_position().value(), position);
    auto history =
        copy->ReadStream(case_, StreamVersion(1), Direction::kForward, 10);
    ASSERT_OK(history);
    EXPECT_EQ(history->size(), 1u);  // the report
  }
  // An empty body works too; parameters do not exist; only an admin may.
  auto empty = client_->Send(http_verb::post, "/v1/admin/backups", "",
                             {{"Authorization", "Bearer " + token_["admin"]}});
  EXPECT_EQ(empty.result_int(), 201) << empty.body();
  EXPECT_EQ(Post("admin", "/v1/admin/backups", {{"to", "/tmp"}}).result_int(),
            400);
  EXPECT_EQ(Post("dsl", "/v1/admin/backups", Json::object()).result_int(), 403);
  deps_->backup = nullptr;
  EXPECT_EQ(Post("admin", "/v1/admin/backups", Json::object()).result_int(),
            503);
}

TEST_F(CaseRoutesTest, TheAuthorisationMatrix) {
  Report("reporter");  // a case the reporter reported
  // A token for the admin to revoke (admin is the last role walked).
  ASSERT_TRUE(service::IssueToken(*store_, service_->catalog(),
                                  {"user:matrix-leaver", Role::kDsl}, "test")
                  .ok());
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  const std::string month = FormatTimestamp(NowUtc()).substr(0, 7);
  // Roles each route admits (besides the open operational routes).
  std::map<std::string, std::set<std::string>> admits = {
      {"GET /v1/cases", {"reporter", "dsl", "alt", "reviewer"}},
      {"POST /v1/cases", {"reporter", "dsl", "alt", "reviewer"}},
      {"POST /v1/cases/{id}/commands/{command}", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}", {"reporter", "dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/history", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/replay", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/replay/steps", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/access-log", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/export", {"dsl", "alt"}},
      {"GET /v1/cases/{id}/verify", {"dsl", "alt", "reviewer", "admin"}},
      {"GET /v1/governance/overview", {"dsl", "alt", "reviewer"}},
      {"GET /v1/governance/sample", {"dsl", "alt", "reviewer"}},
      {"GET /v1/governance/{view}", {"dsl", "alt", "reviewer"}},
      {"GET /v1/learning/feed", {"dsl", "alt", "reviewer", "integration"}},
      {"GET /v1/learning/summary", {"dsl", "alt", "reviewer", "integration"}},
      {"GET /v1/learning/stream", {"dsl", "alt", "reviewer", "integration"}},
      {"POST /v1/admin/tokens/revoke", {"admin"}},
      {"POST /v1/admin/backups", {"admin"}},
      {"POST /v1/admin/store/resume", {"admin"}},
      {"GET /v1/admin/notifications", {"admin"}},
      {"GET /healthz", {}},
      {"GET /readyz", {}},
      {"GET /metrics", {}},
      {"GET /", {}},
      {"GET /console/{file}", {}},
  };
  const std::set<std::string> open = {"GET /healthz", "GET /readyz",
                                      "GET /metrics", "GET /",
                                      "GET /console/{file}"};
  const std::set<std::string> everyone = {"reporter", "dsl",         "alt",
                                          "reviewer", "integration", "admin"};
  // Signing in, who one is, and the schemas forms are built from: any role.
  for (const char* route : {"POST /v1/session", "GET /v1/session",
                            "DELETE /v1/session", "GET /v1/schemas/{file}"}) {
    admits.emplace(route, everyone);
  }
  size_t checked = 0;
  for (const std::string& route : router_.Routes()) {
    ASSERT_TRUE(admits.count(route)) << route << " has no row in the matrix";
    const std::string method = route.substr(0, route.find(' '));
    std::string target = route.substr(route.find(' ') + 1);
    auto put = [&](const std::string& from, const std::string& to) {
      if (size_t at = target.find(from); at != std::string::npos) {
        target.replace(at, from.size(), to);
      }
    };
    put("{id}", case_);
    put("{command}", "record-learning");
    put("{view}", "consent-overrides");
    put("{file}", route == "GET /console/{file}" ? "app.js" : "common.v1.json");
    if (target == "/v1/governance/sample") target += "?month=" + month;
    for (const std::string role :
         {"reporter", "dsl", "alt", "reviewer", "integration", "admin"}) {
      testing::HttpClient::Response r;
      if (method == "POST") {
        Json body = target == "/v1/cases"                ? ReportBody()
                    : target == "/v1/admin/backups"      ? Json::object()
                    : target == "/v1/admin/store/resume" ? Json::object()
                    : target == "/v1/admin/tokens/revoke"
                        ? Json{{"actor_id", "user:matrix-leaver"}}
                    : target == "/v1/session"
                        ? Json{{"token", token_[role]}}
                        : Json{{"learning_id", "matrix-" + role},
                               {"what_went_well", "a"},
                               {"what_must_change", "b"},
                               {"share_in", {"training"}}};
        r = Post(role, target, body);
      } else if (method == "DELETE") {
        r = client_->Send(http_verb::delete_, target, "",
                          {{"Authorization", "Bearer " + token_[role]}});
      } else if (target == "/v1/learning/stream") {
        // An event stream does not end: its status line is the answer.
        SseReader sse(server_->port(), token_[role]);
        sse.ReadUntil("\r\n");
        r.result(std::stoi(sse.received().substr(9, 3)));
      } else {
        r = Get(role, target);
      }
      const bool allowed = open.count(route) || admits.at(route).count(role);
      if (allowed) {
        EXPECT_TRUE(r.result_int() == 200 || r.result_int() == 201 ||
                    r.result_int() == 204)
            << route << " as " << role << ": " << r.result_int() << " "
            << r.body();
      } else {
        EXPECT_EQ(r.result_int(), 403) << route << " as " << role;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, admits.size() * 6);
}

TEST_F(CaseRoutesTest, AdminsSeeEveryAlertAndWhatBecameOfIt) {
  Report("reporter");
  // The fixture configures nobody's address: both alerts of the new
  // concern are dead letters at once, saying why.
  Json list;
  ASSERT_TRUE(testing::WaitFor([&] {
    auto r = Get("admin", "/v1/admin/notifications");
    list = Body(r);
    return r.result_int() == 200 && list["notifications"].size() == 2;
  })) << list.dump();
  for (const Json& n : list["notifications"]) {
    EXPECT_EQ(n["status"], "dead");
    EXPECT_EQ(n["kind"], "concern_reported");
    EXPECT_EQ(n["case_id"], case_);
    EXPECT_EQ(n["channel"], "none");
    EXPECT_THAT(n["last_error"].get<std::string>(),
                ::testing::HasSubstr("no e-mail address or webhook"));
  }
  EXPECT_EQ(list["outbox"]["dead"], 2);
  EXPECT_TRUE(list["outbox"]["healthy"].get<bool>());
  EXPECT_TRUE(list["next"].is_null());
  auto page = Body(Get("admin", "/v1/admin/notifications?status=dead&limit=1"));
  ASSERT_EQ(page["notifications"].size(), 1u);
  ASSERT_TRUE(page["next"].is_string());
  auto rest = Body(Get("admin", "/v1/admin/notifications?status=dead&before=" +
                                    page["next"].get<std::string>()));
  ASSERT_EQ(rest["notifications"].size(), 1u);
  EXPECT_NE(rest["notifications"][0]["id"], page["notifications"][0]["id"]);
  EXPECT_EQ(
      Body(Get("admin",
               "/v1/admin/notifications?status=delivered"))["notifications"]
          .size(),
      0u);
  EXPECT_EQ(Metric("caseledger_notify_dead_letters"), "2");
  EXPECT_EQ(Metric("caseledger_notify_healthy"), "1");

  EXPECT_EQ(Get("dsl", "/v1/admin/notifications").result_int(), 403);
  for (const char* bad : {"?status=lost", "?limit=0", "?limit=x",
                          "?before=msg_nonesuch", "?colour=red"}) {
    auto r = Get("admin", std::string("/v1/admin/notifications") + bad);
    EXPECT_EQ(r.result_int(), 400) << bad << ": " << r.body();
    EXPECT_EQ(r["Content-Type"], "application/problem+json") << bad;
  }
}

TEST(QueryParamsTest, DecodesPairs) {
  auto q = QueryParams("/x?at=3&until=2026-01-01T00%3A00%3A00Z&flag&a+b=c+d");
  EXPECT_EQ(q["at"], "3");
  EXPECT_EQ(q["until"], "2026-01-01T00:00:00Z");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["a b"], "c d");
  EXPECT_TRUE(QueryParams("/x").empty());
}

// The disk fills up and is then given room again: the server stays up,
// refuses writes with 507 (writing nothing), serves what needs no write,
// says it is not ready and why (/readyz, /metrics), and once space is freed
// takes writes again without a restart, losing nothing it acknowledged.
TEST_F(CaseRoutesTest, AFullDiskFailsClosedAndResumesWhenSpaceIsFreed) {
  Report();
  const std::string case_id = case_;
  Ok(Get("dsl", "/v1/cases/" + case_id));
  EXPECT_EQ(Metric("caseledger_store_writable"), "1");
  const uint64_t before = store_->committed_position().value();

  disk_.full = true;
  for (int i = 0; i < 3; ++i) {
    auto refused = Post("reporter", "/v1/cases", ReportBody());
    EXPECT_EQ(refused.result_int(), 507) << refused.body();
    EXPECT_EQ(refused[boost::beast::http::field::content_type],
              "application/problem+json");
    EXPECT_EQ(refused["Retry-After"], "30");
  }
  EXPECT_EQ(store_->committed_position().value(), before);
  // The process is up; it says it is not ready, and why.
  EXPECT_EQ(client_->Send(http_verb::get, "/healthz").result_int(), 200);
  auto ready = client_->Send(http_verb::get, "/readyz");
  EXPECT_EQ(ready.result_int(), 503);
  EXPECT_NE(ready.body().find("disk is full"), std::string::npos)
      << ready.body();
  EXPECT_EQ(Metric("caseledger_store_writable"), "0");
  EXPECT_EQ(Metric("caseledger_store_disk_full"), "1");
  // Reads that need no write go on; a read of a case's contents must be
  // recorded on its access log first, so it is refused like a write.
  EXPECT_EQ(Get("dsl", "/v1/governance/overview").result_int(), 200);
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_id + "/verify").result_int(), 200);
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_id).result_int(), 507);
  // An admin's resume says the disk is still full.
  auto resume = Post("admin", "/v1/admin/store/resume", Json::object());
  EXPECT_EQ(resume.result_int(), 507) << resume.body();

  // Room again: ready within seconds, without a restart or a call.
  disk_.full = false;
  EXPECT_TRUE(testing::WaitFor([&] {
    return client_->Send(http_verb::get, "/readyz").result_int() == 200;
  }));
  EXPECT_EQ(Metric("caseledger_store_writable"), "1");
  EXPECT_EQ(Metric("caseledger_store_recoveries_total"), "1");
  auto again = Post("reporter", "/v1/cases", ReportBody());
  EXPECT_EQ(again.result_int(), 201) << again.body();
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_id).result_int(), 200);
  auto ok = Post("admin", "/v1/admin/store/resume", Json::object());
  EXPECT_EQ(ok.result_int(), 200) << ok.body();
  auto report = store_->Verify(std::nullopt);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok);
}

TEST_F(CaseRoutesTest, ProblemMappingIsOneTable) {
  EXPECT_EQ(ProblemFromStatus(Status::InvalidArgument("x")).status, 400);
  EXPECT_EQ(ProblemFromStatus(Status::NotFound("x")).status, 404);
  EXPECT_EQ(ProblemFromStatus(Status::AlreadyExists("x")).status, 409);
  EXPECT_EQ(ProblemFromStatus(Status::WrongExpectedVersion(3, "x")).status,
            409);
  EXPECT_EQ(
      ProblemFromStatus(Status::WrongExpectedVersion(3, "x"), true).status,
      412);
  EXPECT_EQ(ProblemFromStatus(Status::PermissionDenied("x")).status, 403);
  EXPECT_EQ(ProblemFromStatus(Status::FailedPrecondition("x")).status, 409);
  EXPECT_EQ(ProblemFromStatus(Status::Unavailable("x")).status, 503);
  HttpResponse full = ProblemFromStatus(Status::NoSpace("/secret/path: x"));
  EXPECT_EQ(full.status, 507);
  EXPECT_EQ(full.body.find("secret"), std::string::npos);
  ASSERT_EQ(full.headers.size(), 1u);
  EXPECT_EQ(full.headers[0].first, "Retry-After");
  HttpResponse io = ProblemFromStatus(Status::IOError("/secret/path: disk"));
  EXPECT_EQ(io.status, 500);
  EXPECT_EQ(io.body.find("secret"), std::string::npos);
}

}  // namespace
}  // namespace caseledger::api

// The console's sessions and pages over HTTP: a person signs in once with
// their token and gets an HttpOnly, SameSite=Strict cookie; the session
// ends when idle too long, on sign-out and when the token is revoked; a
// cookie alone cannot change anything from another origin; the pages are
// served with a policy that runs only this server's scripts.
#include <regex>

#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

class SessionRoutesTest : public CaseRoutesTest {
 protected:
  // Signs `who` in; returns the Cookie header value to send back.
  std::string SignIn(const std::string& who) {
    auto r = client_->Send(http_verb::post, "/v1/session",
                           Json{{"token", token_[who]}}.dump(),
                           {{"Origin", "http://localhost"}});
    EXPECT_EQ(r.result_int(), 200) << r.body();
    std::string set = std::string(r["Set-Cookie"]);
    return set.substr(0, set.find(';'));
  }
  testing::HttpClient::Response WithCookie(
      http_verb method, const std::string& target, const std::string& cookie,
      const std::string& body = "", std::map<std::string, std::string> h = {}) {
    h["Cookie"] = cookie;
    return client_->Send(method, target, body, h);
  }
  void Advance(std::chrono::seconds by) { session_elapsed_s_ += by.count(); }
};

TEST_F(SessionRoutesTest, SignInSetsAnHttpOnlyStrictCookieThatAuthenticates) {
  auto r = client_->Send(http_verb::post, "/v1/session",
                         Json{{"token", token_["dsl"]}}.dump());
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const std::string set = std::string(r["Set-Cookie"]);
  EXPECT_TRUE(set.rfind("caseledger_session=", 0) == 0) << set;
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos) << set;
  EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos) << set;
  EXPECT_NE(set.find("; Path=/"), std::string::npos) << set;
  EXPECT_EQ(set.find("Secure"), std::string::npos) << "plain HTTP: " << set;
  // The cookie is not the token, and the answer does not carry the token.
  EXPECT_EQ(set.find(token_["dsl"]), std::string::npos);
  EXPECT_EQ(r.body().find(token_["dsl"]), std::string::npos);
  Json who = Body(r);
  EXPECT_EQ(who["actor_id"], "user:dsl-1");
  EXPECT_EQ(who["role"], "dsl");
  EXPECT_EQ(who["idle_timeout_seconds"], 1800);
  EXPECT_NE(
      std::find(who["commands"].begin(), who["commands"].end(), "assign-lead"),
      who["commands"].end());
  EXPECT_EQ(who["command_schemas"]["assign-lead"], "LeadAssigned.v1.json");
  EXPECT_EQ(who["command_schemas"]["assess-risk"], "RiskAssessed.v2.json");
  EXPECT_FALSE(who["command_schemas"].contains("approve-erasure"));
  EXPECT_EQ(who["server_owned"]["raise-escalation"],
            Json::array({"acknowledgement_due_at"}));
  EXPECT_FALSE(who["server_owned"].contains("assign-lead"));

  const std::string cookie = set.substr(0, set.find(';'));
  auto me = WithCookie(http_verb::get, "/v1/session", cookie);
  ASSERT_EQ(me.result_int(), 200) << me.body();
  EXPECT_EQ(Body(me)["actor_id"], "user:dsl-1");
  Report();
  auto list = WithCookie(http_verb::get, "/v1/cases", cookie);
  EXPECT_EQ(list.result_int(), 200) << list.body();
  // The request log names the person, never the cookie.
  EXPECT_EQ(log_.str().find(cookie.substr(cookie.find('=') + 1)),
            std::string::npos);
}

TEST_F(SessionRoutesTest, UnderTlsTheCookieIsSecureAndTheOriginHttps) {
  // (The server's own TLS is tested in config_tls_test; this is what the
  // routes do once they know they are behind it.)
  deps_->tls = true;
  auto r = client_->Send(http_verb::post, "/v1/session",
                         Json{{"token", token_["reporter"]}}.dump(),
                         {{"Origin", "https://localhost"}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const std::string set = std::string(r["Set-Cookie"]);
  EXPECT_NE(set.find("; Secure"), std::string::npos) << set;
  const std::string cookie = set.substr(0, set.find(';'));
  const std::string body = ReportBody().dump();
  EXPECT_EQ(WithCookie(http_verb::post, "/v1/cases", cookie, body,
                       {{"Origin", "http://localhost"}})
                .result_int(),
            403);
  EXPECT_EQ(WithCookie(http_verb::post, "/v1/cases", cookie, body,
                       {{"Origin", "https://localhost"}})
                .result_int(),
            201);
}

TEST_F(SessionRoutesTest, AnUnknownTokenOrABadBodySignsNobodyIn) {
  auto wrong = client_->Send(http_verb::post, "/v1/session",
                             Json{{"token", "clt_not-a-token"}}.dump());
  EXPECT_EQ(wrong.result_int(), 401);
  EXPECT_EQ(std::string(wrong["Set-Cookie"]), "");
  for (const std::string body :
       {R"({})", R"({"token": 7})", R"({"token": "x", "role": "admin"})"}) {
    auto bad = client_->Send(http_verb::post, "/v1/session", body);
    ASSERT_EQ(bad.result_int(), 400) << body;
    EXPECT_EQ(Body(bad)["errors"][0]["pointer"], "/token") << bad.body();
  }
  EXPECT_EQ(sessions_->size(), 0u);
  // No session, no cookie: 401, as without a token.
  EXPECT_EQ(WithCookie(http_verb::get, "/v1/session",
                       "caseledger_session=0123456789abcdef")
                .result_int(),
            401);
}

TEST_F(SessionRoutesTest, ASessionEndsAfterItsIdleTimeAndNotBefore) {
  const std::string cookie = SignIn("reporter");
  Advance(std::chrono::minutes(29));
  ASSERT_EQ(WithCookie(http_verb::get, "/v1/session", cookie).result_int(),
            200);
  // That request started the idle time again.
  Advance(std::chrono::minutes(29));
  ASSERT_EQ(WithCookie(http_verb::get, "/v1/session", cookie).result_int(),
            200);
  Advance(std::chrono::minutes(30));
  auto ended = WithCookie(http_verb::get, "/v1/cases", cookie);
  EXPECT_EQ(ended.result_int(), 401);
  EXPECT_NE(std::string(ended["Set-Cookie"]).find("Max-Age=0"),
            std::string::npos);
  EXPECT_EQ(sessions_->size(), 0u);
}

TEST_F(SessionRoutesTest, SignOutEndsTheSessionOnTheServer) {
  const std::string cookie = SignIn("dsl");
  auto out = WithCookie(http_verb::delete_, "/v1/session", cookie, "",
                        {{"Origin", "http://localhost"}});
  EXPECT_EQ(out.result_int(), 204);
  EXPECT_NE(std::string(out["Set-Cookie"]).find("Max-Age=0"),
            std::string::npos);
  // The same cookie, kept by someone, no longer opens anything.
  EXPECT_EQ(WithCookie(http_verb::get, "/v1/cases", cookie).result_int(), 401);
}

TEST_F(SessionRoutesTest, RevokingTheTokenEndsItsSessions) {
  const std::string cookie = SignIn("dsl");
  ASSERT_EQ(WithCookie(http_verb::get, "/v1/cases", cookie).result_int(), 200);
  Ok(Post("admin", "/v1/admin/tokens/revoke", {{"token", token_["dsl"]}}));
  EXPECT_EQ(WithCookie(http_verb::get, "/v1/cases", cookie).result_int(), 401);
  EXPECT_EQ(sessions_->size(), 0u);
}

TEST_F(SessionRoutesTest, ACookieAloneChangesNothingFromAnotherOrigin) {
  const std::string cookie = SignIn("reporter");
  const uint64_t before = store_->committed_position().value();
  const std::string body = ReportBody().dump();
  for (const auto& headers : std::vector<std::map<std::string, std::string>>{
           {},                                   // no Origin at all
           {{"Origin", "http://evil.example"}},  // another site
           {{"Origin", "https://localhost"}},    // another scheme
           {{"Origin", "http://localhost:1"}},   // another port
           {{"Origin", "null"}}}) {              // an opaque origin
    auto r = WithCookie(http_verb::post, "/v1/cases", cookie, body, headers);
    EXPECT_EQ(r.result_int(), 403) << r.body();
  }
  EXPECT_EQ(store_->committed_position().value(), before) << "nothing written";
  auto own = WithCookie(http_verb::post, "/v1/cases", cookie, body,
                        {{"Origin", "http://localhost"}});
  EXPECT_EQ(own.result_int(), 201) << own.body();
  // Signing in from another site's page is refused too.
  auto forged = client_->Send(http_verb::post, "/v1/session",
                              Json{{"token", token_["reporter"]}}.dump(),
                              {{"Origin", "http://evil.example"}});
  EXPECT_EQ(forged.result_int(), 403);
}

TEST_F(SessionRoutesTest, ABearerTokenStillWorksAndWinsOverACookie) {
  const std::string cookie = SignIn("reporter");
  // A DSL's token with a reporter's cookie acts as the DSL, and needs no
  // Origin: it is not sent by a browser on its own.
  Report();
  auto r = client_->Send(
      http_verb::post, "/v1/cases/" + case_ + "/commands/assign-lead",
      Json{{"lead_actor_id", "user:dsl-1"},
           {"role", "dsl"},
           {"reason", "initial_assignment"}}
          .dump(),
      {{"Authorization", "Bearer " + token_["dsl"]}, {"Cookie", cookie}});
  EXPECT_EQ(r.result_int(), 200) << r.body();
}

TEST_F(SessionRoutesTest, TheConsoleRunsOnlyThisServersScripts) {
  auto page = client_->Send(http_verb::get, "/");
  ASSERT_EQ(page.result_int(), 200);
  EXPECT_EQ(std::string(page["Content-Type"]), "text/html; charset=utf-8");
  const std::string csp = std::string(page["Content-Security-Policy"]);
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos) << csp;
  EXPECT_EQ(std::string(page["X-Frame-Options"]), "DENY");
  // Every script has a source on this server: none is inline, none from
  // elsewhere.
  const std::string html = page.body();
  std::regex script("<script[^>]*>");
  size_t scripts = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), script);
       it != std::sregex_iterator(); ++it) {
    ++scripts;
    EXPECT_NE(it->str().find("src=\"/console/"), std::string::npos)
        << it->str();
  }
  EXPECT_GE(scripts, 1u);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);

  auto js = client_->Send(http_verb::get, "/console/app.js");
  ASSERT_EQ(js.result_int(), 200);
  EXPECT_EQ(std::string(js["Content-Type"]), "text/javascript; charset=utf-8");
  EXPECT_EQ(client_->Send(http_verb::get, "/console/nothing.js").result_int(),
            404);
  EXPECT_EQ(client_->Send(http_verb::get, "/console/..%2fapi").result_int(),
            404);
  // API answers are never cached on the client's disk, nor sniffed.
  auto api = Get("dsl", "/v1/cases");
  EXPECT_EQ(std::string(api["Cache-Control"]), "no-store");
  EXPECT_EQ(std::string(api["X-Content-Type-Options"]), "nosniff");
  EXPECT_NE(
      std::string(api["Content-Security-Policy"]).find("default-src 'none'"),
      std::string::npos);
}

TEST_F(SessionRoutesTest, SchemasAreServedToThoseSignedIn) {
  EXPECT_EQ(
      client_->Send(http_verb::get, "/v1/schemas/common.v1.json").result_int(),
      401);
  const std::string cookie = SignIn("reporter");
  auto common =
      WithCookie(http_verb::get, "/v1/schemas/common.v1.json", cookie);
  ASSERT_EQ(common.result_int(), 200);
  EXPECT_EQ(std::string(common["Content-Type"]), "application/schema+json");
  EXPECT_TRUE(Body(common)["definitions"].contains("harm_category"));
  EXPECT_EQ(WithCookie(http_verb::get, "/v1/schemas/nothing.json", cookie)
                .result_int(),
            404);
}

}  // namespace
}  // namespace caseledger::api

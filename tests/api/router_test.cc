#include "api/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace caseledger::api {
namespace {

HttpRequest Req(std::string method, std::string target) {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/v1/cases/{id}",
                [](const HttpRequest&, const PathParams& p) {
                  HttpResponse r;
                  r.body = p.at("id");
                  return r;
                });
    router_.Add("POST", "/v1/cases/{id}/commands/{command}",
                [](const HttpRequest&, const PathParams& p) {
                  HttpResponse r;
                  r.status = 201;
                  r.body = p.at("id") + "/" + p.at("command");
                  return r;
                });
    router_.Add("GET", "/boom",
                [](const HttpRequest&, const PathParams&) -> HttpResponse {
                  throw std::runtime_error("secret detail");
                });
  }
  Router router_;
};

TEST_F(RouterTest, MatchesPathParametersAndIgnoresTheQuery) {
  HttpResponse r = router_.Handle(Req("GET", "/v1/cases/abc-1?x=1"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "abc-1");
  r = router_.Handle(Req("POST", "/v1/cases/c9/commands/triage"));
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "c9/triage");
  EXPECT_EQ(router_.RouteOf(Req("GET", "/v1/cases/zz")), "/v1/cases/{id}");
}

TEST_F(RouterTest, UnknownPathIsA404Problem) {
  HttpResponse r = router_.Handle(Req("GET", "/v1/nothing"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/problem+json");
  auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["status"], 404);
  EXPECT_EQ(body["title"], "Not Found");
  EXPECT_EQ(router_.RouteOf(Req("GET", "/v1/nothing")), "unmatched");
}

TEST_F(RouterTest, WrongMethodIsA405WithAllow) {
  HttpResponse r = router_.Handle(Req("DELETE", "/v1/cases/a"));
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "GET");
}

TEST_F(RouterTest, HandlerExceptionIsA500ThatRevealsNothing) {
  HttpResponse r = router_.Handle(Req("GET", "/boom"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
}

TEST_F(RouterTest, WriteHooksSeeWritesOnlyAndSettleOnlyTheirSuccesses) {
  std::vector<std::string> admitted;
  Router::WriteHooks hooks;
  hooks.admit = [&](const HttpRequest& req,
                    const std::string& pattern) -> std::optional<HttpResponse> {
    admitted.push_back(req.method + " " + pattern);
    if (req.target.find("refuse") != std::string::npos) {
      return Problem(503, "Read-Only Follower", "no writes here");
    }
    return std::nullopt;
  };
  hooks.settle = [&](HttpResponse resp, Router::Respond respond) {
    resp.headers.emplace_back("X-Settled", "1");
    respond(std::move(resp));
  };
  router_.SetWriteHooks(hooks);

  // Reads pass untouched.
  HttpResponse r = router_.Handle(Req("GET", "/v1/cases/a"));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.headers.empty());
  EXPECT_TRUE(admitted.empty());
  // A write is admitted, then settled.
  r = router_.Handle(Req("POST", "/v1/cases/c1/commands/triage"));
  EXPECT_EQ(r.status, 201);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "X-Settled");
  EXPECT_EQ(admitted,
            std::vector<std::string>{"POST /v1/cases/{id}/commands/{command}"});
  // A refused write never reaches its handler.
  r = router_.Handle(Req("POST", "/v1/cases/refuse/commands/triage"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body.find("refuse/triage"), std::string::npos);
  // A write that fails is answered as it is, not settled; nor is a write
  // to a route that does not exist admitted.
  router_.Add("POST", "/v1/fails", [](const HttpRequest&, const PathParams&) {
    return Problem(409, "Conflict", "no");
  });
  r = router_.Handle(Req("POST", "/v1/fails"));
  EXPECT_EQ(r.status, 409);
  EXPECT_TRUE(r.headers.empty());
  const size_t before = admitted.size();
  EXPECT_EQ(router_.Handle(Req("POST", "/v1/none")).status, 404);
  EXPECT_EQ(admitted.size(), before);
}

// An asynchronous handler can fail after it has taken the Respond: by
// throwing, or by dropping it (its work thrown away on another thread).
// Either way the request is answered, once, with a 500 naming its id.
TEST(RouterFailureTest, EveryRequestIsAnsweredExactlyOnce) {
  Router router;
  router.AddAsync("GET", "/throws",
                  [](const HttpRequest&, const PathParams&, Router::Respond) {
                    throw std::logic_error("after taking respond");
                  });
  router.AddAsync(
      "GET", "/drops",
      [](const HttpRequest&, const PathParams&, Router::Respond respond) {
        std::thread([r = std::move(respond)] {}).join();
      });
  router.AddAsync(
      "GET", "/twice",
      [](const HttpRequest&, const PathParams&, Router::Respond respond) {
        respond(Problem(409, "Conflict", "first"));
        respond(Problem(200, "OK", "second"));
      });
  router.Add(
      "GET", "/int",
      [](const HttpRequest&, const PathParams&) -> HttpResponse { throw 7; });
  for (const char* target : {"/throws", "/drops", "/int"}) {
    HttpRequest req = Req("GET", target);
    req.request_id = "req-42";
    int answers = 0;
    HttpResponse last;
    router.Dispatch(req, [&](HttpResponse r) {
      ++answers;
      last = std::move(r);
    });
    EXPECT_EQ(answers, 1) << target;
    EXPECT_EQ(last.status, 500) << target;
    auto body = nlohmann::json::parse(last.body);
    EXPECT_EQ(body["request_id"], "req-42") << target;
    EXPECT_NE(body["detail"].get<std::string>().find("req-42"),
              std::string::npos);
    EXPECT_EQ(last.body.find("after taking"), std::string::npos);
  }
  int answers = 0;
  int status = 0;
  router.Dispatch(Req("GET", "/twice"), [&](HttpResponse r) {
    ++answers;
    status = r.status;
  });
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(status, 409);
}

TEST(SplitPathTest, DropsEmptySegmentsAndQuery) {
  EXPECT_EQ(SplitPath("/a//b/?q=/c"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitPath("/").empty());
}

}  // namespace
}  // namespace caseledger::api

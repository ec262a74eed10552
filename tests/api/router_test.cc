#include "api/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

TEST(SplitPathTest, DropsEmptySegmentsAndQuery) {
  EXPECT_EQ(SplitPath("/a//b/?q=/c"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(SplitPath("/").empty());
}

}  // namespace
}  // namespace caseledger::api

// Lists and governance views over HTTP, from the read models.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

TEST_F(CaseRoutesTest, ListsComeFromTheReadModelShapedByRole) {
  Report("reporter");
  std::string mine = case_;
  auto other = Post("reporter2", "/v1/cases", ReportBody());
  ASSERT_EQ(other.result_int(), 201);
  Json barred_report = ReportBody();
  barred_report["people_involved"][1]["is_dsl"] = true;
  barred_report["people_involved"][1]["actor_id"] = "user:dsl-1";
  auto barred = Post("reporter2", "/v1/cases", barred_report);
  ASSERT_EQ(barred.result_int(), 201);
  std::string pos = std::to_string(Body(barred)["position"].get<uint64_t>());

  auto all = Get("reviewer", "/v1/cases?after_position=" + pos);
  Ok(all);
  EXPECT_EQ(Body(all)["cases"].size(), 3u);
  auto own = Get("reporter", "/v1/cases?after_position=" + pos);
  Ok(own);
  ASSERT_EQ(Body(own)["cases"].size(), 1u);
  EXPECT_EQ(Body(own)["cases"][0]["case_id"], mine);
  auto dsl = Get("dsl", "/v1/cases?after_position=" + pos);
  Ok(dsl);
  EXPECT_EQ(Body(dsl)["cases"].size(), 2u);  // not the case naming them
  // Page by page, the barred case is never named, not even by a cursor.
  const std::string barred_id = Body(barred)["case_id"];
  std::string cursor;
  size_t seen = 0;
  for (int pages = 0; pages < 5; ++pages) {
    auto p = Get("dsl", "/v1/cases?limit=1" +
                            (cursor.empty() ? "" : "&cursor=" + cursor));
    Ok(p);
    EXPECT_EQ(p.body().find(barred_id), std::string::npos) << p.body();
    EXPECT_EQ(p["Link"].find(barred_id), std::string::npos);
    seen += Body(p)["cases"].size();
    cursor = Body(p)["next_cursor"];
    if (cursor.empty()) break;
  }
  EXPECT_EQ(seen, 2u);
  // A reporter's list says no more than GET of one of their cases does.
  // Where it stands, and when it was reported: nothing more.
  EXPECT_EQ(Body(own)["cases"][0].size(), 4u);
  EXPECT_TRUE(Body(own)["cases"][0].contains("reported_at"));
  EXPECT_FALSE(Body(own)["cases"][0].contains("categories"));
  auto page = Get("reviewer", "/v1/cases?stage=reported&limit=2");
  Ok(page);
  EXPECT_EQ(Body(page)["cases"].size(), 2u);
  EXPECT_NE(page["Link"].find("rel=\"next\""), std::string::npos);
  auto rest = Get("reviewer", "/v1/cases?stage=reported&limit=2&cursor=" +
                                  Body(page)["next_cursor"].get<std::string>());
  Ok(rest);
  EXPECT_EQ(Body(rest)["cases"].size(), 1u);
  EXPECT_EQ(Get("reviewer", "/v1/cases?limit=0").result_int(), 400);
  EXPECT_EQ(Get("reviewer", "/v1/cases?overdue=review").result_int(), 400);
  EXPECT_EQ(Get("integration", "/v1/cases").result_int(), 403);
  auto ready = client_->Send(http_verb::get, "/readyz");
  Ok(ready);
}

TEST_F(CaseRoutesTest, GovernanceViewsAreForLeadsAndReviewers) {
  Report();
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  auto overview = Get("reviewer", "/v1/governance/overview");
  Ok(overview);
  EXPECT_EQ(Body(overview)["cases_by_stage"]["reported"], 1);
  Ok(Get("dsl", "/v1/governance/overdue-acknowledgements"));
  Ok(Get("alt", "/v1/governance/consent-overrides"));
  auto month = Body(overview)["cases_reported_by_month"].begin().key();
  auto sample =
      Get("reviewer", "/v1/governance/sample?month=" + month + "&size=3");
  Ok(sample);
  EXPECT_EQ(Body(sample)["cases"].size(), 1u);
  EXPECT_EQ(Get("reviewer", "/v1/governance/sample").result_int(), 400);
  EXPECT_EQ(Get("reviewer", "/v1/governance/sample?month=2026-13").result_int(),
            400);
  EXPECT_EQ(Get("reviewer", "/v1/governance/no-such-view").result_int(), 404);
  EXPECT_EQ(Get("reporter", "/v1/governance/overview").result_int(), 403);
  EXPECT_EQ(Get("integration", "/v1/governance/overview").result_int(), 403);
  EXPECT_EQ(Get("admin", "/v1/governance/overdue-reviews").result_int(), 403);
}

}  // namespace
}  // namespace caseledger::api

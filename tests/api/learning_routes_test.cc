// The learning feed, its event stream and summary over HTTP: anonymised, and
// released only once a month is over.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

TEST_F(CaseRoutesTest, IntegrationsReadOnlyTheAnonymisedFeedAndSummary) {
  Report();
  std::string pos = std::to_string(store_->committed_position().value());
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  auto feed = Get("integration", "/v1/learning/feed?after=0&limit=10");
  Ok(feed);
  Json records = Body(feed)["records"];
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["kind"], "case_reported");
  EXPECT_EQ(records[0]["seq"], 1);
  EXPECT_EQ(records[0]["case"].get<std::string>().rfind("p-", 0), 0u);
  // Under the reading integration's own pseudonym, not the stored one.
  auto stored = models_->Feed(0, 10, "");
  ASSERT_OK(stored);
  ASSERT_EQ(stored->records.size(), 1u);
  EXPECT_NE(records[0]["case"], stored->records[0]["case"]);
  auto own = models_->Feed(0, 10, "", "svc:feed");
  ASSERT_OK(own);
  EXPECT_EQ(records[0]["case"], own->records[0]["case"]);
  EXPECT_EQ(feed.body().find(case_), std::string::npos);
  EXPECT_EQ(feed.body().find("Person A"), std::string::npos);
  auto summary = Get("integration", "/v1/learning/summary");
  Ok(summary);
  EXPECT_EQ(Body(summary)["by_setting"]["online_session"], "suppressed");
  EXPECT_EQ(Get("reporter", "/v1/learning/feed").result_int(), 403);
  EXPECT_EQ(Get("admin", "/v1/learning/summary").result_int(), 403);
  EXPECT_EQ(Get("integration", "/v1/learning/feed?after=x").result_int(), 400);
  EXPECT_EQ(Get("integration", "/v1/cases/" + case_ + "/history").result_int(),
            403);
}

TEST_F(CaseRoutesTest, ALearningMonthIsReleasedOnlyOnceItIsOver) {
  deps_->feed_release_delay_months = 1;
  Report();
  Report();
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  // This month is not over: nothing of it yet, not even counts.
  auto feed = Get("integration", "/v1/learning/feed");
  Ok(feed);
  EXPECT_EQ(Body(feed)["records"].size(), 0u);
  auto summary = Get("integration", "/v1/learning/summary");
  Ok(summary);
  EXPECT_EQ(Body(summary)["by_month"], Json::object());
  // Next month, all of it.
  const Timestamp later(NowUtc().value() + int64_t{32} * 24 * 3600 * 1000000);
  clock_.Set(later);
  feed = Get("integration", "/v1/learning/feed");
  EXPECT_EQ(Body(feed)["records"].size(), 2u);
  summary = Get("integration", "/v1/learning/summary");
  EXPECT_EQ(Body(summary)["by_month"].size(), 1u) << summary.body();
  SseReader sse(server_->port(), token_["integration"]);
  EXPECT_TRUE(sse.ReadUntil("\nid: 2\n")) << sse.received();
}

TEST_F(CaseRoutesTest, TheLearningStreamCatchesUpGoesLiveAndResumes) {
  for (int i = 0; i < 3; ++i) Report();
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  {
    SseReader sse(server_->port(), token_["integration"]);
    ASSERT_TRUE(sse.ReadUntil("\nid: 3\n")) << sse.received();
    EXPECT_NE(sse.received().find("200 OK"), std::string::npos);
    EXPECT_NE(sse.received().find("text/event-stream"), std::string::npos);
    EXPECT_NE(sse.received().find("event: learning-record"), std::string::npos);
    // Live: records appended while the stream is open arrive on it.
    Report();
    Report();
    ASSERT_TRUE(sse.ReadUntil("\nid: 5\n")) << sse.received();
    EXPECT_EQ(sse.Ids(), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(sse.received().find(case_), std::string::npos);  // pseudonyms
  }
  // A reconnecting client names the last event it saw and gets what follows.
  SseReader resumed(server_->port(), token_["integration"],
                    "Last-Event-ID: 3\r\n");
  ASSERT_TRUE(resumed.ReadUntil("\nid: 5\n")) << resumed.received();
  EXPECT_EQ(resumed.Ids(), (std::vector<uint64_t>{4, 5}));

  SseReader bad(server_->port(), token_["integration"],
                "Last-Event-ID: four\r\n");
  bad.ReadUntil("\r\n\r\n");
  EXPECT_EQ(bad.received().rfind("HTTP/1.1 400", 0), 0u) << bad.received();
  SseReader reporter(server_->port(), token_["reporter"]);
  reporter.ReadUntil("\r\n\r\n");
  EXPECT_EQ(reporter.received().rfind("HTTP/1.1 403", 0), 0u);

  // A stopping server ends open streams properly (the last chunk), so
  // shutdown is not held up by them.
  server_->Shutdown();
  EXPECT_TRUE(resumed.ReadUntil("\r\n0\r\n\r\n")) << resumed.received();
  thread_.join();
}

}  // namespace
}  // namespace caseledger::api

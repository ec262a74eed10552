// Reading one case over HTTP: its state, replay, and the access log every
// read writes.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

// Case documents are kept per version between reads: a read after a
// command shows the command, and a reread is the same document.
TEST_F(CaseRoutesTest, EachReadShowsTheCaseAsItIsNow) {
  Report();
  auto first = Get("dsl", "/v1/cases/" + case_);
  Ok(first);
  EXPECT_EQ(first["ETag"], "\"1\"");
  EXPECT_EQ(Body(first)["stage"], "reported");
  EXPECT_NE(Body(first)["lead_actor_id"], "user:dsl-1");
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  auto second = Get("dsl", "/v1/cases/" + case_);
  Ok(second);
  EXPECT_EQ(second["ETag"], "\"2\"");
  EXPECT_EQ(Body(second)["version"], 2);
  EXPECT_EQ(Body(second)["lead_actor_id"], "user:dsl-1");
  auto again = Get("dsl", "/v1/cases/" + case_);
  Ok(again);
  EXPECT_EQ(again.body(), second.body());
  EXPECT_EQ(again["Content-Type"], "application/json");
  // The reporter's view is shaped for them, whatever is kept.
  auto own = Get("reporter", "/v1/cases/" + case_);
  Ok(own);
  Json shaped = Body(own);
  EXPECT_TRUE(shaped["reported_at"].is_string());
  shaped.erase("reported_at");
  EXPECT_EQ(
      shaped,
      (Json{{"case_id", case_}, {"stage", "acknowledged"}, {"version", 2}}));
}

TEST_F(CaseRoutesTest, AReporterSeesOnlyTheirOwnCasesAndLittleOfThem) {
  Report("reporter");
  auto own = Get("reporter", "/v1/cases/" + case_);
  Ok(own);
  EXPECT_EQ(Body(own)["stage"], "reported");
  EXPECT_FALSE(Body(own).contains("consents"));
  EXPECT_EQ(Get("reporter2", "/v1/cases/" + case_).result_int(), 403);
  // Not theirs and not existing look the same.
  EXPECT_EQ(Get("reporter2", "/v1/cases/case-unknown").result_int(), 403);
  EXPECT_EQ(Get("dsl", "/v1/cases/case-unknown").result_int(), 404);
}

TEST_F(CaseRoutesTest, ReviewersReplayACaseStepByStep) {
  Report();
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  auto at1 = Get("reviewer", "/v1/cases/" + case_ + "/replay?at=1");
  Ok(at1);
  EXPECT_EQ(Body(at1)["stage"], "reported");
  auto steps = Get("reviewer", "/v1/cases/" + case_ + "/replay/steps");
  Ok(steps);
  ASSERT_EQ(Body(steps)["steps"].size(), 2u);
  EXPECT_EQ(Body(steps)["steps"][1]["who"]["id"], "user:dsl-1");
  auto until = Get("reviewer", "/v1/cases/" + case_ +
                                   "/replay?until=2000-01-01T00%3A00%3A00Z");
  EXPECT_EQ(until.result_int(), 404);
  auto bad = Get("reviewer", "/v1/cases/" + case_ + "/replay?at=first");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(Body(bad)["pointer"], "at");
  EXPECT_EQ(Get("reporter", "/v1/cases/" + case_ + "/replay").result_int(),
            403);
}

// Each access record names the version of the case that was shown, and is
// a CaseRead event written through the service (validated by its schema).
TEST_F(CaseRoutesTest, EachAccessRecordNamesTheVersionShown) {
  Report();
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  Ok(Get("dsl", "/v1/cases/" + case_));                         // v2
  Ok(Get("reviewer", "/v1/cases/" + case_ + "/replay?at=1"));   // v1
  Ok(Get("reviewer", "/v1/cases/" + case_ + "/replay/steps"));  // to v2
  auto log = Get("reviewer", "/v1/cases/" + case_ + "/access-log");
  Ok(log);
  Json reads = Body(log)["reads"];
  ASSERT_EQ(reads.size(), 3u);
  EXPECT_EQ(reads[0]["version"], 2);
  EXPECT_EQ(reads[1]["version"], 1);
  EXPECT_EQ(reads[2]["what"], "replay_steps");
  EXPECT_EQ(reads[2]["version"], 2);
  auto events = store_->ReadStream(service::AccessStreamOf(case_),
                                   StreamVersion(1), Direction::kForward, 10);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) {
    EXPECT_EQ(e.type, "CaseRead");
    EXPECT_OK(service_->catalog().Validate(
        e.type, e.schema_version, service::ParseStoredJson(e.payload)));
  }
}

TEST_F(CaseRoutesTest, EveryReadOfACaseIsRecordedInItsAccessLog) {
  Report();
  Ok(Get("dsl", "/v1/cases/" + case_));
  Ok(Get("reviewer", "/v1/cases/" + case_ + "/history"));
  Ok(Get("reviewer", "/v1/cases/" + case_ + "/replay?at=1"));
  Ok(Get("reporter", "/v1/cases/" + case_));
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(5)));
  Ok(Get("alt", "/v1/cases"));  // a list shows the case too
  auto log = Get("reviewer", "/v1/cases/" + case_ + "/access-log");
  Ok(log);
  Json reads = Body(log)["reads"];
  ASSERT_EQ(reads.size(), 5u);
  EXPECT_EQ(reads[4]["who"]["id"], "user:alt-dsl-1");
  EXPECT_EQ(reads[4]["what"], "list");
  EXPECT_EQ(reads[0]["who"]["id"], "user:dsl-1");
  EXPECT_EQ(reads[0]["what"], "state");
  EXPECT_EQ(reads[1]["who"]["role"], "reviewer");
  EXPECT_EQ(reads[1]["what"], "history");
  EXPECT_EQ(reads[2]["what"], "replay");
  EXPECT_EQ(reads[3]["who"]["id"], "user:reporter-1");
  // Refused reads are not reads; the log itself reveals no contents.
  EXPECT_EQ(Get("integration", "/v1/cases/" + case_).result_int(), 403);
  EXPECT_EQ(Get("reporter", "/v1/cases/" + case_ + "/access-log").result_int(),
            403);
  Ok(Get("dsl", "/v1/cases/" + case_ + "/access-log"));
  EXPECT_EQ(
      Body(Get("dsl", "/v1/cases/" + case_ + "/access-log"))["reads"].size(),
      5u);
}

}  // namespace
}  // namespace caseledger::api

// Commands over HTTP: reports and commands, their preconditions, retries,
// bodies that must be refused, and shutdown with writes in flight.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

TEST_F(CaseRoutesTest, AWholeCaseFromReportToLearning) {
  Report();
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  Ok(Command("dsl", "triage",
             {{"route", "safeguarding_case"},
              {"related_to_activity", true},
              {"rationale", "Harm in a project session."},
              {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}}},
             {{"If-Match", "\"2\""}}));
  Ok(Command("dsl", "record-consent",
             {{"consent_id", "consent-1"},
              {"person_ref", "person-1"},
              {"purpose", "refer_to_local_authority"},
              {"decision", "given"},
              {"decided_by", "person"},
              {"capacity", "assumed"}}));
  Ok(Command("dsl", "record-consent",
             {{"consent_id", "consent-2"},
              {"person_ref", "person-1"},
              {"purpose", "refer_to_local_authority"},
              {"decision", "withdrawn"},
              {"previous_consent_id", "consent-1"},
              {"decided_by", "person"},
              {"capacity", "assumed"}}));
  Ok(Command("dsl", "override-consent",
             {{"override_id", "override-1"},
              {"person_ref", "person-1"},
              {"purpose", "refer_to_local_authority"},
              {"lawful_basis", "risk_to_others"},
              {"rationale", "Others in the group are at risk."},
              {"decided_by", {{"actor_id", "user:dsl-1"}, {"role", "dsl"}}},
              {"person_to_be_informed", true}}));
  Ok(Command(
      "dsl", "raise-escalation",
      {{"escalation_id", "escalation-1"},
       {"target", "local_authority_adult_safeguarding"},
       {"trigger", "statutory_referral"},
       {"reason", "Continuing harm to an adult with care needs."},
       {"urgency", "urgent"},
       {"basis", {{"kind", "override"}, {"override_id", "override-1"}}}}));
  Ok(Command("dsl", "acknowledge-escalation",
             {{"escalation_id", "escalation-1"}, {"channel", "email"}}));
  Ok(Command("dsl", "schedule-review",
             {{"review_id", "review-1"},
              {"kind", "with_person"},
              {"reason", "first_review"}}));
  Ok(Command("dsl", "complete-review",
             {{"review_id", "review-1"},
              {"kind", "with_person"},
              {"person_took_part", true},
              {"outcomes_achieved", "partially"},
              {"feels_safer", "yes"},
              {"what_changes", "Separate groups."},
              {"no_next_review_reason", "case_to_close"}}));
  Ok(Command("dsl", "close",
             {{"reason", "outcomes_achieved"},
              {"outcome_review_id", "review-1"},
              {"feedback_to_reporter_given", true}}));
  // Closed: only reopen, amendment, learning and audit.
  auto refused = Command("dsl", "assess-risk", Json::object());
  EXPECT_EQ(refused.result_int(), 409) << refused.body();
  Ok(Command("dsl", "reopen",
             {{"reason", "new_information"},
              {"reason_detail", "Person A reports more messages."}}));
  auto history = Get("dsl", "/v1/cases/" + case_ + "/history");
  Ok(history);
  Json events = Body(history)["events"];
  ASSERT_EQ(events.size(), 12u);
  std::string report_id = events[0]["event_id"];
  EXPECT_EQ(events[0]["type"], "ConcernReported");
  EXPECT_EQ(events[0]["actor"]["role"], "reporter");
  EXPECT_EQ(events[4]["payload"]["decision"], "withdrawn");
  EXPECT_EQ(events[5]["payload"]["lawful_basis"], "risk_to_others");
  EXPECT_EQ(events[11]["log_hash"].get<std::string>().size(), 64u);
  Ok(Command("dsl", "amend",
             {{"amends_event_id", report_id},
              {"amends_event_type", "ConcernReported"},
              {"amends_schema_version", 1},
              {"corrected_fields", {{"categories", {"online_misuse"}}}},
              {"reason", "Wrong category chosen."}}));
  Ok(Command("dsl", "record-learning",
             {{"learning_id", "learning-1"},
              {"what_went_well", "Quick report."},
              {"what_must_change", "Clearer chat rules."},
              {"share_in", {"training"}}}));
  auto state = Get("dsl", "/v1/cases/" + case_);
  Ok(state);
  Json s = Body(state);
  EXPECT_EQ(s["stage"], "open");
  EXPECT_EQ(s["version"], 14);
  EXPECT_EQ(s["consents"].size(), 2u);
  EXPECT_EQ(s["times_reopened"], 1);
  EXPECT_EQ(state["ETag"], "\"14\"");
  auto verify = Get("admin", "/v1/cases/" + case_ + "/verify");
  Ok(verify);
  EXPECT_EQ(Body(verify)["ok"], true);
  EXPECT_EQ(Body(verify)["events_checked"], 14);
}

TEST_F(CaseRoutesTest, AStaleIfMatchIs412WithTheCurrentVersion) {
  Report();
  auto r = Command("dsl", "assign-lead",
                   {{"lead_actor_id", "user:dsl-1"},
                    {"role", "dsl"},
                    {"reason", "initial_assignment"}},
                   {{"If-Match", "\"0\""}});
  EXPECT_EQ(r.result_int(), 412) << r.body();
  EXPECT_EQ(Body(r)["current_version"], 1);
  EXPECT_EQ(r["ETag"], "\"1\"");
  EXPECT_EQ(
      Command("dsl", "assign-lead", Json::object(), {{"If-Match", "soon"}})
          .result_int(),
      400);
}

TEST_F(CaseRoutesTest, ARetryWithTheSameIdempotencyKeyWritesOnce) {
  const std::string key = "report-2026-11-23-0001";
  auto first =
      Post("reporter", "/v1/cases", ReportBody(), {{"Idempotency-Key", key}});
  ASSERT_EQ(first.result_int(), 201);
  std::string id = Body(first)["case_id"];
  case_ = id;
  // The retried report lands on the same case, writing nothing.
  const uint64_t after_report = store_->committed_position().value();
  auto again =
      Post("reporter", "/v1/cases", ReportBody(), {{"Idempotency-Key", key}});
  ASSERT_EQ(again.result_int(), 200) << again.body();
  EXPECT_EQ(Body(again)["case_id"], id);
  EXPECT_EQ(Body(again)["deduplicated"], true);
  EXPECT_EQ(Body(again)["position"], Body(first)["position"]);
  EXPECT_EQ(store_->committed_position().value(), after_report);
  Json lead = {{"lead_actor_id", "user:dsl-1"},
               {"role", "dsl"},
               {"reason", "initial_assignment"}};
  const std::string key2 = EventId::NewV7().ToString();
  auto a = Command("dsl", "assign-lead", lead, {{"Idempotency-Key", key2}});
  auto b = Command("dsl", "assign-lead", lead, {{"Idempotency-Key", key2}});
  Ok(a);
  Ok(b);
  EXPECT_EQ(Body(a)["position"], Body(b)["position"]);
  EXPECT_EQ(Body(b)["deduplicated"], true);
  // The same key from another actor is another request.
  auto other =
      Post("reporter2", "/v1/cases", ReportBody(), {{"Idempotency-Key", key}});
  ASSERT_EQ(other.result_int(), 201) << other.body();
  EXPECT_NE(Body(other)["case_id"], id);
  const uint64_t before = store_->committed_position().value();
  // The same key with another body: 422, and nothing written.
  Json other_lead = lead;
  other_lead["lead_actor_id"] = "user:dsl-2";
  auto reused =
      Command("dsl", "assign-lead", other_lead, {{"Idempotency-Key", key2}});
  EXPECT_EQ(reused.result_int(), 422) << reused.body();
  EXPECT_EQ(Body(reused)["status"], 422);
  // ...or on another case, or as another command.
  EXPECT_EQ(Post("dsl", "/v1/cases", ReportBody(), {{"Idempotency-Key", key2}})
                .result_int(),
            422);
  EXPECT_EQ(store_->committed_position().value(), before);
  for (const std::string& bad :
       std::vector<std::string>{"", std::string(256, 'k'), "tab\tkey"}) {
    auto r = Command("dsl", "assign-lead", lead, {{"Idempotency-Key", bad}});
    EXPECT_EQ(r.result_int(), 400) << "'" << bad << "'";
    EXPECT_EQ(Body(r)["pointer"], "Idempotency-Key");
  }
}

TEST_F(CaseRoutesTest, BadBodiesAreProblemsThatNameTheFieldAndWriteNothing) {
  Report();
  const uint64_t before = store_->committed_position().value();
  auto invalid = Command("dsl", "assign-lead",
                         {{"lead_actor_id", "user:dsl-1"},
                          {"role", "chief"},
                          {"reason", "initial_assignment"}});
  EXPECT_EQ(invalid.result_int(), 400);
  EXPECT_EQ(invalid[boost::beast::http::field::content_type],
            "application/problem+json");
  EXPECT_EQ(Body(invalid)["pointer"], "/role");
  EXPECT_EQ(Body(invalid)["errors"][0]["pointer"], "/role");
  // Every failing field, each where it is (a missing one where it should
  // be), so a form can mark them all.
  Json two_wrong = ReportBody();
  two_wrong.erase("facts");
  two_wrong["setting"] = "moon";
  auto both = Post("reporter", "/v1/cases", two_wrong);
  EXPECT_EQ(both.result_int(), 400) << both.body();
  std::set<std::string> named;
  const Json problem = Body(both);
  for (const auto& e : problem["errors"]) {
    named.insert(e["pointer"].get<std::string>());
    EXPECT_FALSE(e["detail"].get<std::string>().empty());
  }
  EXPECT_EQ(named, (std::set<std::string>{"/facts", "/setting"}))
      << both.body();
  // Refused by the case as it is: 409, naming the field.
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  auto early = Command("dsl", "close",
                       {{"reason", "outcomes_achieved"},
                        {"outcome_review_id", "review-1"},
                        {"feedback_to_reporter_given", true}});
  EXPECT_EQ(early.result_int(), 409) << early.body();
  EXPECT_EQ(Body(early)["pointer"], "/outcome_review_id");
  EXPECT_EQ(Body(early)["errors"][0]["pointer"], "/outcome_review_id");
  auto not_json = client_->Send(
      http_verb::post, "/v1/cases/" + case_ + "/commands/assign-lead", "{oops",
      {{"Authorization", "Bearer " + token_["dsl"]}});
  EXPECT_EQ(not_json.result_int(), 400);
  auto wrong_type = client_->Send(
      http_verb::post, "/v1/cases/" + case_ + "/commands/assign-lead", "{}",
      {{"Authorization", "Bearer " + token_["dsl"]},
       {"Content-Type", "text/plain"}});
  EXPECT_EQ(wrong_type.result_int(), 415);
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto too_deep = client_->Send(
      http_verb::post, "/v1/cases/" + case_ + "/commands/assign-lead", deep,
      {{"Authorization", "Bearer " + token_["dsl"]}});
  EXPECT_EQ(too_deep.result_int(), 400);
  EXPECT_EQ(Command("dsl", "no-such-command", Json::object()).result_int(),
            404);
  EXPECT_EQ(Command("dsl", "report", ReportBody()).result_int(), 404);
  auto before_report =
      Post("dsl", "/v1/cases/case-nothing/commands/triage", Json::object());
  EXPECT_EQ(before_report.result_int(), 409);
  // (One write: the lead.)
  EXPECT_EQ(store_->committed_position().value(), before + 1);
}

// These two bodies once ended the process (the domain read "kind" before
// the schema check and threw on a worker thread): each is now a 400 that
// names the field, writes nothing, and the server serves on.
TEST_F(CaseRoutesTest, ABodyOfTheWrongShapeCannotTakeTheServerDown) {
  Report();
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:dsl-1"},
              {"role", "dsl"},
              {"reason", "initial_assignment"}}));
  const uint64_t before = store_->committed_position().value();
  for (int round = 0; round < 3; ++round) {
    auto schedule = Command("dsl", "schedule-review", {{"kind", 1}});
    EXPECT_EQ(schedule.result_int(), 400) << schedule.body();
    EXPECT_EQ(Body(schedule)["pointer"], "/kind") << schedule.body();
    auto complete =
        Command("reviewer", "complete-review", {{"kind", {{"a", 1}}}});
    EXPECT_EQ(complete.result_int(), 400) << complete.body();
    EXPECT_EQ(schedule[boost::beast::http::field::content_type],
              "application/problem+json");
  }
  EXPECT_EQ(store_->committed_position().value(), before);
  auto health = client_->Send(http_verb::get, "/healthz", "", {});
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_).result_int(), 200);
}

// A report with 8,000 duplicate categories once took 32 s to refuse; it is
// refused at maxItems. A command whose time budget has run out before it
// reaches the store is 503 and writes nothing.
TEST_F(CaseRoutesTest, HostileBodiesAndSpentBudgetsWriteNothing) {
  const uint64_t before = store_->committed_position().value();
  Json report = ReportBody();
  report["categories"] = Json::array();
  for (int i = 0; i < 8000; ++i) {
    report["categories"].push_back(ReportBody()["categories"][0]);
  }
  auto dup = Post("reporter", "/v1/cases", report);
  EXPECT_EQ(dup.result_int(), 400) << dup.body();
  EXPECT_EQ(Body(dup)["pointer"], "/categories");
  deps_->command_budget = std::chrono::milliseconds(0);
  auto late = Post("reporter", "/v1/cases", ReportBody());
  EXPECT_EQ(late.result_int(), 503) << late.body();
  EXPECT_EQ(late["Retry-After"], "5");
  EXPECT_EQ(store_->committed_position().value(), before);
  deps_->command_budget = std::chrono::seconds(10);
  Report();
}

TEST_F(CaseRoutesTest, TheDslNamedInAConcernIsBarredFromIt) {
  Json report = ReportBody();
  report["people_involved"][1]["is_dsl"] = true;
  report["people_involved"][1]["actor_id"] = "user:dsl-1";
  auto r = Post("reporter", "/v1/cases", report);
  ASSERT_EQ(r.result_int(), 201);
  case_ = Body(r)["case_id"];
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_).result_int(), 403);
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_ + "/history").result_int(), 403);
  // A stale If-Match does not get a barred actor the case's version.
  auto stale = Command("dsl", "record-learning",
                       {{"learning_id", "l-1"},
                        {"what_went_well", "a"},
                        {"what_must_change", "b"},
                        {"share_in", {"training"}}},
                       {{"If-Match", "\"7\""}});
  EXPECT_EQ(stale.result_int(), 403) << stale.body();
  EXPECT_EQ(stale["ETag"], "");
  for (const char* read :
       {"/replay?at=1", "/replay/steps", "/access-log", "/verify"}) {
    EXPECT_EQ(Get("dsl", "/v1/cases/" + case_ + read).result_int(), 403)
        << read;
    Ok(Get("alt", "/v1/cases/" + case_ + read));
  }
  // verify is for cases, not the token or access streams.
  EXPECT_EQ(Get("admin", "/v1/cases/sys.tokens/verify").result_int(), 403);
  EXPECT_EQ(Get("admin", "/v1/cases/access:" + case_ + "/verify").result_int(),
            403);
  Ok(Get("admin", "/v1/cases/" + case_ + "/verify"));
  EXPECT_EQ(Command("dsl", "assign-lead",
                    {{"lead_actor_id", "user:alt-dsl-1"},
                     {"role", "alt_dsl"},
                     {"reason", "conflict_of_interest"}})
                .result_int(),
            403);
  Ok(Command("alt", "assign-lead",
             {{"lead_actor_id", "user:alt-dsl-1"},
              {"role", "alt_dsl"},
              {"reason", "conflict_of_interest"}}));
  Ok(Get("alt", "/v1/cases/" + case_));
}

TEST_F(CaseRoutesTest, ACorrectedReportThatNamesTheDslBarsThemRetriesToo) {
  Report();
  Ok(Command("dsl", "assign-lead",
             {{"lead_actor_id", "user:alt-dsl-1"},
              {"role", "alt_dsl"},
              {"reason", "dsl_unavailable"}}));
  const Json learning = {{"learning_id", "l-1"},
                         {"what_went_well", "a"},
                         {"what_must_change", "b"},
                         {"share_in", {"training"}}};
  Ok(Command("dsl", "record-learning", learning, {{"Idempotency-Key", "k-1"}}));
  // The report is corrected: it names this DSL, who is barred from now on.
  auto history = Get("reviewer", "/v1/cases/" + case_ + "/history");
  Ok(history);
  const Json first = Body(history)["events"][0];
  ASSERT_EQ(first["type"], "ConcernReported");
  Json people = first["payload"]["people_involved"];
  people[1]["is_dsl"] = true;
  people[1]["actor_id"] = "user:dsl-1";
  Ok(Command("alt", "amend",
             {{"amends_event_id", first["event_id"]},
              {"amends_event_type", "ConcernReported"},
              {"amends_schema_version", 1},
              {"corrected_fields", {{"people_involved", people}}},
              {"reason", "The person named is our DSL."}}));
  // Barred by the correction: no reads, and not even a retry's answer.
  EXPECT_EQ(Get("dsl", "/v1/cases/" + case_).result_int(), 403);
  auto retry =
      Command("dsl", "record-learning", learning, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(retry.result_int(), 403) << retry.body();
  Ok(Get("alt", "/v1/cases/" + case_));
}

TEST_F(CaseRoutesTest, ShutdownWithWritesInFlightLosesNoAcknowledgedWrite) {
  // Four clients report concerns as fast as they can while the server is
  // told to stop. Every report it acknowledged must be in the store, whole.
  std::mutex mu;
  std::vector<std::pair<std::string, uint64_t>> acknowledged;
  std::atomic<bool> go{true};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      testing::HttpClient client(server_->port());
      while (go.load()) {
        testing::HttpClient::Response r;
        try {
          r = client.Send(http_verb::post, "/v1/cases", ReportBody().dump(),
                          {{"Authorization", "Bearer " + token_["reporter"]}});
        } catch (const std::exception&) {
          return;  // refused: the server has stopped accepting
        }
        if (r.result_int() == 201) {
          std::lock_guard<std::mutex> lk(mu);
          acknowledged.emplace_back(Body(r)["case_id"],
                                    Body(r)["position"].get<uint64_t>());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  server_->Shutdown();
  thread_.join();  // returns once requests in flight are answered
  go = false;
  for (auto& t : clients) t.join();
  workers_->Stop();
  models_->Stop();
  ASSERT_GT(acknowledged.size(), 10u);
  // (Whether a request happens to be mid-flight at the moment of the stop
  // is timing; ServerTest.ShutdownFinishesTheRequestInFlight pins that.)

  // Reopen the store from disk: every acknowledged report is there.
  ASSERT_OK(store_->Close());
  auto reopened = testing::OpenStore(dir_.path(), Options{});
  for (const auto& [id, position] : acknowledged) {
    auto v = reopened->GetStreamVersion(id);
    ASSERT_OK(v);
    EXPECT_EQ(v->value(), 1u) << id;
    auto e = reopened->ReadAll(GlobalPosition(position - 1), 1);
    ASSERT_OK(e);
    ASSERT_EQ(e->size(), 1u);
    EXPECT_EQ((*e)[0].stream_id, id);
  }
  auto report = reopened->Verify(std::nullopt);
  ASSERT_OK(report);
  EXPECT_TRUE(report->ok);
}

}  // namespace
}  // namespace caseledger::api

// Erasure and legal hold over HTTP, as the DSL and governance use them: two
// people decide an erasure, after which every personal field of the case
// reads as erased on every route, while its facts, decisions and chains
// stay whole.
#include "tests/api/case_routes_fixture.h"

namespace caseledger::api {
namespace {

class ErasureRoutesTest : public CaseRoutesTest {
 protected:
  void CloseCase() {
    Ok(Command("dsl", "assign-lead",
               {{"lead_actor_id", "user:dsl-1"},
                {"role", "dsl"},
                {"reason", "initial_assignment"}}));
    Ok(Command("dsl", "close",
               {{"reason", "person_declined_further_involvement"},
                {"no_review_reason", "person_declined_review"},
                {"feedback_to_reporter_given", false}}));
  }
  static Json Request(const std::string& id, const std::string& scope) {
    return {{"erasure_id", id},
            {"scope", scope},
            {"legal_ground", "no_longer_necessary"},
            {"rationale", "The record is no longer needed."}};
  }
  // Every string anywhere in `j`.
  static void Strings(const Json& j, std::vector<std::string>* out) {
    if (j.is_string()) out->push_back(j.get<std::string>());
    if (j.is_structured()) {
      for (const auto& v : j) Strings(v, out);
    }
  }
  static bool Mentions(const Json& j, const std::string& text) {
    std::vector<std::string> all;
    Strings(j, &all);
    for (const auto& s : all) {
      if (s.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

TEST_F(ErasureRoutesTest, AnErasedCaseReadsAsErasedOnEveryRoute) {
  Report();
  CloseCase();
  const std::string facts = ReportBody()["facts"];
  auto before = Get("dsl", "/v1/cases/" + case_ + "/history");
  Ok(before);
  ASSERT_TRUE(Mentions(Body(before), facts));

  // Asked by the DSL; not theirs to approve; approved by an admin.
  Ok(Command("dsl", "request-erasure", Request("er-1", "case")));
  auto self = Command("dsl", "approve-erasure", {{"erasure_id", "er-1"}});
  EXPECT_EQ(self.result_int(), 403) << self.body();
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(10)));
  auto pending = Get("reviewer", "/v1/governance/erasure-requests");
  Ok(pending);
  ASSERT_EQ(Body(pending)["items"].size(), 1u) << pending.body();
  EXPECT_EQ(Body(pending)["items"][0]["erasure_id"], "er-1");
  auto approved = Command("admin", "approve-erasure", {{"erasure_id", "er-1"}});
  Ok(approved);
  EXPECT_TRUE(keys_->store().IsDestroyed(case_, "case"));

  for (const std::string route :
       {"/history", "/replay", "/replay?at=1", "/replay/steps", ""}) {
    auto r = Get("dsl", "/v1/cases/" + case_ + route);
    Ok(r);
    EXPECT_FALSE(Mentions(Body(r), facts)) << route;
    EXPECT_FALSE(Mentions(Body(r), "Person B")) << route;
  }
  auto history = Body(Get("dsl", "/v1/cases/" + case_ + "/history"));
  const Json& report = history["events"][0]["payload"];
  EXPECT_EQ(report["facts"], "[erased]");
  EXPECT_EQ(report["people_involved"][1]["name"], "[erased]");
  // The facts that are not personal stay, and so do the decisions.
  EXPECT_EQ(report["categories"],
            Json::array({"racism_and_microaggression", "online_misuse"}));
  const Json& last = history["events"].back();
  EXPECT_EQ(last["type"], "PersonalDataErased");
  EXPECT_EQ(last["actor"]["id"], "user:admin-1");
  EXPECT_EQ(last["payload"]["erasure_id"], "er-1");
  auto verify = Get("admin", "/v1/cases/" + case_ + "/verify");
  Ok(verify);
  EXPECT_EQ(Body(verify)["ok"], true);
  // The read models say so too, once they have the event.
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(10)));
  auto state = Body(Get("dsl", "/v1/cases/" + case_));
  EXPECT_EQ(state["personal_data_erased"], true);
  EXPECT_EQ(state["erasures"]["er-1"]["status"], "approved");
  auto erased = Body(Get("reviewer", "/v1/governance/personal-data-erased"));
  ASSERT_EQ(erased["items"].size(), 1u) << erased.dump();
  EXPECT_EQ(erased["items"][0]["scope"], "*");
  EXPECT_TRUE(Body(Get("reviewer", "/v1/governance/erasure-requests"))["items"]
                  .empty());
  // Nothing more happens to it.
  auto reopen =
      Command("dsl", "reopen",
              {{"reason", "new_information"}, {"reason_detail", "More news."}});
  EXPECT_EQ(reopen.result_int(), 409) << reopen.body();
}

TEST_F(ErasureRoutesTest, ALegalHoldStopsAnErasureAndIsShownToGovernance) {
  Report();
  CloseCase();
  Ok(Command("dsl", "request-erasure", Request("er-1", "case")));
  auto alt = Command(
      "alt", "place-legal-hold",
      {{"reason", "litigation"}, {"reason_detail", "A claim was filed."}});
  EXPECT_EQ(alt.result_int(), 403) << alt.body();
  Ok(Command(
      "admin", "place-legal-hold",
      {{"reason", "litigation"}, {"reason_detail", "A claim was filed."}}));
  auto held = Command("reviewer", "approve-erasure", {{"erasure_id", "er-1"}});
  EXPECT_EQ(held.result_int(), 409) << held.body();
  EXPECT_FALSE(keys_->store().IsDestroyed(case_, "case"));
  ASSERT_TRUE(
      models_->WaitFor(store_->committed_position(), std::chrono::seconds(10)));
  auto holds = Body(Get("reviewer", "/v1/governance/legal-holds"));
  ASSERT_EQ(holds["items"].size(), 1u) << holds.dump();
  EXPECT_EQ(holds["items"][0]["case_id"], case_);
  Ok(Command("reviewer", "refuse-erasure",
             {{"erasure_id", "er-1"},
              {"exemption_ground", "legal_claims"},
              {"rationale", "Needed for the claim."}}));
  auto history = Body(Get("dsl", "/v1/cases/" + case_ + "/history"));
  EXPECT_EQ(history["events"].back()["type"], "ErasureRefused");
  EXPECT_EQ(history["events"][0]["payload"]["facts"], ReportBody()["facts"]);
}

TEST_F(ErasureRoutesTest, ASubjectAccessExportHoldsEverythingAndIsLogged) {
  Report();
  CloseCase();
  auto all = Get("dsl", "/v1/cases/" + case_ + "/export");
  Ok(all);
  Json e = Body(all);
  EXPECT_EQ(e["scope"], "case");
  EXPECT_EQ(e["events"].size(), 3u);
  EXPECT_EQ(e["events"][0]["payload"]["facts"], ReportBody()["facts"]);
  EXPECT_EQ(e["state"]["stage"], "closed");
  ASSERT_TRUE(e.contains("access_log"));
  // One person: only the events that name them.
  auto one = Get("alt", "/v1/cases/" + case_ + "/export?person=person-2");
  Ok(one);
  EXPECT_EQ(Body(one)["scope"], "person");
  EXPECT_EQ(Body(one)["events"].size(), 1u);
  EXPECT_FALSE(Body(one).contains("access_log"));
  EXPECT_EQ(
      Get("dsl", "/v1/cases/" + case_ + "/export?person=person-9").result_int(),
      404);
  EXPECT_EQ(
      Get("dsl", "/v1/cases/" + case_ + "/export?person=%00").result_int(),
      400);
  // Governance and reporters do not answer subject access requests.
  EXPECT_EQ(Get("reviewer", "/v1/cases/" + case_ + "/export").result_int(),
            403);
  EXPECT_EQ(Get("reporter", "/v1/cases/" + case_ + "/export").result_int(),
            403);
  auto log = Body(Get("dsl", "/v1/cases/" + case_ + "/access-log"))["reads"];
  size_t exports = 0;
  for (const auto& r : log) exports += r["what"] == "export" ? 1 : 0;
  EXPECT_EQ(exports, 2u);
  // After erasing the person, their export reads as erased.
  Ok(Command("dsl", "request-erasure",
             {{"erasure_id", "er-1"},
              {"scope", "person"},
              {"person_ref", "person-2"},
              {"legal_ground", "objection"},
              {"rationale", "They objected."}}));
  Ok(Command("reviewer", "approve-erasure", {{"erasure_id", "er-1"}}));
  auto after =
      Body(Get("dsl", "/v1/cases/" + case_ + "/export?person=person-2"));
  EXPECT_EQ(after["events"][0]["payload"]["people_involved"][1]["name"],
            "[erased]");
  EXPECT_EQ(after["events"][0]["payload"]["people_involved"][0]["name"],
            "Person A");
}

}  // namespace
}  // namespace caseledger::api

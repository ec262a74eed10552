// Drives whole cases through the real server over HTTP.
#include "api/case_routes.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "api/handlers.h"
#include "api/server.h"
#include "caseledger/projections/read_models.h"
#include "engine/src/event_store_impl.h"
#include "tests/support/faulty_disk_env.h"
#include "tests/support/http_client.h"
#include "tests/support/test_support.h"

namespace caseledger::api {
namespace {

using Json = nlohmann::json;
using http_verb = boost::beast::http::verb;
using domain::Actor;
using domain::Role;

Json ReportBody() {
  std::ifstream in(std::string(CASELEDGER_SOURCE_DIR) +
                   "/scripts/examples/report.json");
  return Json::parse(in);
}

class CaseRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.sync = false;
    // On a disk a test can fill up (until then, the real one).
    ASSERT_TRUE(internal::OpenWithEnv(o, dir_.path(), &disk_, &store_).ok());
    auto catalog = domain::EventCatalog::Load();
    ASSERT_TRUE(catalog.ok());
    service_ = std::make_unique<service::CaseService>(*store_, *catalog,
                                                      domain::DomainConfig{});
    for (const auto& [name, actor] : std::vector<std::pair<std::string, Actor>>{
             {"dsl", {"user:dsl-1", Role::kDsl}},
             {"alt", {"user:alt-dsl-1", Role::kAltDsl}},
             {"reporter", {"user:reporter-1", Role::kReporter}},
             {"reporter2", {"user:reporter-2", Role::kReporter}},
             {"reviewer", {"user:reviewer-1", Role::kReviewer}},
             {"integration", {"svc:feed", Role::kIntegration}},
             {"admin", {"user:admin-1", Role::kAdmin}}}) {
      auto t = service::IssueToken(*store_, service_->catalog(), actor, "test");
      ASSERT_TRUE(t.ok());
      token_[name] = *t;
    }
    tokens_ = std::make_unique<TokenRegistry>(*store_);
    ASSERT_TRUE(tokens_->Refresh().ok());
    workers_ = std::make_unique<WorkerPool>(2);
    auto models = projections::ReadModels::Open(
        dir_.path() + "/projections", *store_, *catalog, nullptr,
        "test-pseudonym-key-0123456789");
    ASSERT_TRUE(models.ok()) << models.status().ToString();
    models_ = std::move(*models);
    models_->Start();
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    deps_ = std::make_unique<CaseRouteDeps>(CaseRouteDeps{
        *store_, *service_, *tokens_, *workers_, models_.get(), logger});
    // Most tests follow the feed live; ALearningMonthIsReleased... sets the
    // production delay.
    deps_->feed_release_delay_months = 0;
    deps_->backup = [this]() -> StatusOr<Json> {
      const std::string dir =
          dir_.path() + "/backups/" + std::to_string(++backups_);
      std::filesystem::create_directories(dir_.path() + "/backups");
      ASSIGN_OR_RETURN(GlobalPosition p, store_->Backup(dir));
      return Json{{"backup", dir}, {"position", p.value()}};
    };
    AddOperationalRoutes(router_, *store_, metrics_, models_.get());
    AddCaseRoutes(router_, *deps_);
    ServerOptions so;
    so.port = 0;
    so.threads = 2;
    auto server = Server::Create(so, router_, metrics_, logger);
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    thread_ = std::thread([this] { server_->Run(false); });
    client_ = std::make_unique<testing::HttpClient>(server_->port());
  }
  void TearDown() override {
    disk_.full = false;
    server_->Shutdown();
    if (thread_.joinable()) thread_.join();
    workers_->Stop();
    models_->Stop();
  }

  testing::HttpClient::Response Post(
      const std::string& who, const std::string& target, const Json& body,
      std::map<std::string, std::string> h = {}) {
    h["Authorization"] = "Bearer " + token_[who];
    return client_->Send(http_verb::post, target, body.dump(), h);
  }
  testing::HttpClient::Response Get(const std::string& who,
                                    const std::string& target) {
    return client_->Send(http_verb::get, target, "",
                         {{"Authorization", "Bearer " + token_[who]}});
  }
  testing::HttpClient::Response Command(
      const std::string& who, const std::string& command, const Json& body,
      std::map<std::string, std::string> h = {}) {
    return Post(who, "/v1/cases/" + case_ + "/commands/" + command, body, h);
  }
  std::string Metric(const std::string& name) {
    std::string text = client_->Send(http_verb::get, "/metrics").body();
    size_t at = text.find("\n" + name + " ");
    if (at == std::string::npos) return "<missing>";
    size_t start = at + name.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }
  static Json Body(const testing::HttpClient::Response& r) {
    return Json::parse(r.body(), nullptr, false);
  }
  void Report(const std::string& who = "reporter") {
    auto r = Post(who, "/v1/cases", ReportBody());
    ASSERT_EQ(r.result_int(), 201) << r.body();
    case_ = Body(r)["case_id"];
    EXPECT_EQ(r["Location"], "/v1/cases/" + case_);
    EXPECT_EQ(r["ETag"], "\"1\"");
  }
  void Ok(const testing::HttpClient::Response& r) {
    EXPECT_EQ(r.result_int(), 200) << r.body();
  }

  std::ostringstream log_;  // the server's log lines
  testing::TempDir dir_;
  testing::FaultyDiskEnv disk_;
  std::unique_ptr<EventStore> store_;
  std::unique_ptr<service::CaseService> service_;
  std::map<std::string, std::string> token_;
  std::unique_ptr<TokenRegistry> tokens_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<projections::ReadModels> models_;
  std::unique_ptr<CaseRouteDeps> deps_;
  int backups_ = 0;
  Router router_;
  HttpMetrics metrics_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::unique_ptr<testing::HttpClient> client_;
  std::string case_;
};

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
  EXPECT_EQ(
      Body(own),
      (Json{{"case_id", case_}, {"stage", "acknowledged"}, {"version", 2}}));
}

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
  EXPECT_EQ(store_->committed_position().value(), before);
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
  EXPECT_EQ(Body(own)["cases"][0].size(), 3u);
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

// An event stream over a raw connection: what arrives, as text.
class SseReader {
 public:
  SseReader(uint16_t port, const std::string& token,
            const std::string& extra_headers = "")
      : socket_(ioc_) {
    socket_.connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address("127.0.0.1"), port));
    timeval tv{5, 0};  // no test waits longer than this for a part
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv,
               sizeof(tv));
    std::string req =
        "GET /v1/learning/stream HTTP/1.1\r\nHost: localhost\r\n"
        "Accept: text/event-stream\r\nAuthorization: Bearer " +
        token + "\r\n" + extra_headers + "\r\n";
    boost::asio::write(socket_, boost::asio::buffer(req));
  }
  // Reads until `text` has arrived (true) or nothing more comes (false).
  bool ReadUntil(const std::string& text) {
    char buf[4096];
    while (received_.find(text) == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) return false;
      received_.append(buf, n);
    }
    return true;
  }
  const std::string& received() const { return received_; }
  // The ids of the events received, in order.
  std::vector<uint64_t> Ids() const {
    std::vector<uint64_t> ids;
    for (size_t at = received_.find("\nid: "); at != std::string::npos;
         at = received_.find("\nid: ", at + 1)) {
      ids.push_back(std::stoull(received_.substr(at + 5)));
    }
    return ids;
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
};

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
  deps_->clock = [later] { return later; };
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
  const std::map<std::string, std::set<std::string>> admits = {
      {"GET /v1/cases", {"reporter", "dsl", "alt", "reviewer"}},
      {"POST /v1/cases", {"reporter", "dsl", "alt", "reviewer"}},
      {"POST /v1/cases/{id}/commands/{command}", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}", {"reporter", "dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/history", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/replay", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/replay/steps", {"dsl", "alt", "reviewer"}},
      {"GET /v1/cases/{id}/access-log", {"dsl", "alt", "reviewer"}},
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
      {"GET /healthz", {}},
      {"GET /readyz", {}},
      {"GET /metrics", {}},
  };
  const std::set<std::string> open = {"GET /healthz", "GET /readyz",
                                      "GET /metrics"};
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
                        : Json{{"learning_id", "matrix-" + role},
                               {"what_went_well", "a"},
                               {"what_must_change", "b"},
                               {"share_in", {"training"}}};
        r = Post(role, target, body);
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
        EXPECT_TRUE(r.result_int() == 200 || r.result_int() == 201)
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

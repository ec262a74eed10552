// Evolve() folds a stored payload either from nlohmann's document or from
// simdjson's parse of its text (a rebuild's way); both must give the same
// state for any payload text, valid for its schema or not.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <random>
#include <string>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/domain/evolve_in_place.h"

namespace caseledger::domain {
namespace {

using Json = nlohmann::json;

// Every payload key evolve() reads.
const std::vector<std::string> kKeys = {"kind",
                                        "setting",
                                        "categories",
                                        "priority",
                                        "people_involved",
                                        "person_ref",
                                        "actor_id",
                                        "is_dsl",
                                        "is_alt_dsl",
                                        "roles",
                                        "lead_actor_id",
                                        "role",
                                        "conflicted_actor_ids",
                                        "route",
                                        "outcomes",
                                        "outcome_id",
                                        "consent_id",
                                        "purpose",
                                        "decision",
                                        "override_id",
                                        "share_id",
                                        "plan_id",
                                        "actions",
                                        "action_id",
                                        "due_date",
                                        "escalation_id",
                                        "target",
                                        "urgency",
                                        "acknowledgement_due_at",
                                        "final",
                                        "review_id",
                                        "outcomes_achieved",
                                        "outcome_review_id",
                                        "reason",
                                        "learning_id",
                                        "finding_id",
                                        "reaudit_of_finding_id",
                                        "reaudit_id",
                                        "finding_ids",
                                        "sample_id",
                                        "amends_event_id",
                                        "amends_event_type",
                                        "corrected_fields",
                                        "reason_detail",
                                        "not_sought_detail",
                                        "least_restrictive_option_considered",
                                        "least_restrictive_option_description",
                                        "immediate_risk",
                                        "under_18_involved"};
// Strings evolve() compares with, ids that repeat, escapes, non-ASCII.
const std::vector<std::string> kStrings = {"",
                                           "urgent",
                                           "standard",
                                           "with_person",
                                           "safeguarding_case",
                                           "not_sought",
                                           "ConcernReported",
                                           "LearningRecorded",
                                           "person_alleged_to_cause_harm",
                                           "dsl",
                                           "deputy_dsl",
                                           "ev-1",
                                           "ev-2",
                                           "a-1",
                                           "a-2",
                                           "2026-01-31",
                                           "2026-03-01T10:00:00.000000Z",
                                           "setting",
                                           "kind",
                                           "reason_detail",
                                           "not_sought_detail",
                                           "Zo\\u00eb \\\"quoted\\\"",
                                           "line\\nbreak",
                                           "caf\xc3\xa9"};

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t Pick(size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  // A JSON value as text, of any type; deeper values are mostly scalars.
  std::string Value(int depth) {
    switch (Pick(depth > 2 ? 5 : 8)) {
      case 0:
        return "null";
      case 1:
        return Pick(2) ? "true" : "false";
      case 2:
        return std::to_string(static_cast<int64_t>(Pick(2000)) - 1000);
      case 3:
      case 4:
        return "\"" + kStrings[Pick(kStrings.size())] + "\"";
      case 5: {
        std::string a = "[";
        for (size_t i = 0, n = Pick(4); i < n; ++i) {
          a += (i ? "," : "") + Value(depth + 1);
        }
        return a + "]";
      }
      default:
        return Object(depth + 1);
    }
  }

  // An object of keys evolve() reads, now and then one given twice.
  std::string Object(int depth) {
    std::string o = "{";
    for (size_t i = 0, n = Pick(depth == 0 ? 12 : 5); i < n; ++i) {
      const std::string& key = kKeys[Pick(kKeys.size())];
      o += (i ? "," : "") + ("\"" + key + "\":") + Value(depth);
      if (Pick(20) == 0) o += ",\"" + key + "\":" + Value(depth);
    }
    return o + "}";
  }

 private:
  std::mt19937 rng_;
};

// Folds `text` both ways; false if simdjson cannot read it (a fold then
// builds the document instead).
bool FoldBoth(CaseState* by_document, CaseState* by_parse,
              const EventHeader& header, const std::string& text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text).get(root) != simdjson::SUCCESS) return false;
  DomainEvent d;
  static_cast<EventHeader&>(d) = header;
  d.payload = Json::parse(text);
  *by_document = Evolve(std::move(*by_document), d);
  EvolveInPlace(*by_parse, header, root);
  return true;
}

TEST(EvolveViewsTest, RandomPayloadsFoldTheSameEitherWay) {
  auto catalog = EventCatalog::Load();
  ASSERT_TRUE(catalog.ok());
  const std::vector<std::string> types = (*catalog)->Types();
  Generator g(20261205);
  size_t folded = 0;
  for (int sequence = 0; sequence < 2000; ++sequence) {
    CaseState a;
    CaseState b;
    for (int i = 0; i < 20; ++i) {
      EventHeader h;
      h.event_id = "ev-" + std::to_string(g.Pick(5));
      h.type = types[g.Pick(types.size())];
      h.actor = Actor{"actor-" + std::to_string(g.Pick(3)), Role::kDsl};
      h.recorded_at = Timestamp(1'700'000'000'000'000 + i);
      const std::string text = g.Object(0);
      if (!FoldBoth(&a, &b, h, text)) continue;
      ++folded;
      ASSERT_TRUE(a == b) << h.type << " " << text << "\n"
                          << ToJson("c", a).dump() << "\n"
                          << ToJson("c", b).dump();
    }
  }
  EXPECT_GT(folded, 30000u);
}

// Payloads of the shapes the schemas allow, and the odd ones a fold must
// still read the same way: wrong types, repeated keys, people and
// categories given as objects or scalars.
TEST(EvolveViewsTest, EdgePayloadsFoldTheSameEitherWay) {
  const std::vector<std::pair<std::string, std::string>> events = {
      {"ConcernReported",
       R"({"kind":"concern","setting":"online","categories":["neglect","self_neglect"],)"
       R"("priority":"urgent","immediate_risk":true,"under_18_involved":false,)"
       R"("acknowledgement_due_at":"2026-03-01T10:00:00.000000Z",)"
       R"("people_involved":[{"person_ref":"p1","actor_id":"a-1","is_dsl":true},)"
       R"({"person_ref":"p2","roles":["person_alleged_to_cause_harm"],"actor_id":"a-2"},)"
       R"({"person_ref":"p3","is_dsl":true},"not a person",7]})"},
      {"ConcernReported",
       R"({"categories":{"b":"physical","a":"neglect","a":"sexual"},"people_involved":{"x":{"person_ref":"p4"}}})"},
      {"ConcernReported",
       R"({"categories":"neglect","priority":"urgent","priority":"standard"})"},
      {"LeadAssigned",
       R"({"lead_actor_id":"a-3","role":"dsl","conflicted_actor_ids":["a-4",5,null]})"},
      {"LeadReassigned",
       R"({"lead_actor_id":"a-5","role":"nobody","reason_detail":""})"},
      {"ConsentRecorded",
       R"({"consent_id":"c1","person_ref":"p1","purpose":"sharing","decision":"not_sought"})"},
      {"SafetyPlanAgreed",
       R"({"plan_id":"s1","actions":[{"action_id":"x1","due_date":"2026-01-31"},{"action_id":"x1"}]})"},
      {"EscalationRaised",
       R"({"escalation_id":"e1","target":"police","urgency":"urgent","acknowledgement_due_at":"bad"})"},
      {"ReviewCompleted",
       R"({"review_id":"r1","kind":"with_person","outcomes_achieved":"fully"})"},
      {"ReauditScheduled",
       R"({"reaudit_id":"ra","due_date":"2026-02-01","finding_ids":["f1",["f2"],"f3"]})"},
      {"AuditFindingRecorded",
       R"({"finding_id":"f4","reaudit_of_finding_id":"f3"})"},
      {"CaseClosed", R"({"reason":"resolved","reason_detail":7})"},
      {"EventAmended",
       R"({"amends_event_id":"ev-9","amends_event_type":"ConcernReported",)"
       R"("corrected_fields":{"setting":"home","kind":5,"categories":["physical"],)"
       R"("people_involved":[{"person_ref":"p9","actor_id":"a-9","is_alt_dsl":true}]}})"},
      {"EventAmended",
       R"({"amends_event_id":"ev-5","corrected_fields":{"reason_detail":"why"}})"},
      {"EventAmended",
       R"({"amends_event_id":"ev-12","corrected_fields":"reason_detail"})"},
      {"RiskAssessed", R"({"least_restrictive_option_considered":true})"},
      {"CaseReopened", R"({})"},
      {"CaseClosed", R"([])"},
  };
  CaseState a;
  CaseState b;
  int n = 0;
  for (const auto& [type, text] : events) {
    EventHeader h;
    h.event_id = "ev-" + std::to_string(++n);
    h.type = type;
    h.actor = Actor{"a-0", Role::kDsl};
    h.recorded_at = Timestamp(1'700'000'000'000'000 + n);
    ASSERT_TRUE(FoldBoth(&a, &b, h, text)) << text;
    ASSERT_TRUE(a == b) << type << " " << text << "\n"
                        << ToJson("c", a).dump() << "\n"
                        << ToJson("c", b).dump();
  }
  // The fold read them: not two empty states.
  EXPECT_EQ(a.version, events.size());
  EXPECT_TRUE(a.barred_actor_ids.count("a-2"));
  EXPECT_EQ(a.setting, "home");
  EXPECT_EQ(a.unexplained_decisions.size(), 4u);  // one answered
}

// A rationale sealed at rest (an object in place of its text) is a
// rationale: the rules read its presence, never its words.
TEST(EvolveViewsTest, ASealedRationaleIsPresentEitherWay) {
  EventHeader header;
  header.event_id = "e-1";
  header.type = "CaseClosed";
  header.schema_version = 1;
  for (const std::string detail :
       {R"({"$sealed":"1|case|e-1|/reason_detail|AAAA"})", R"("")"}) {
    CaseState a, b;
    ASSERT_TRUE(FoldBoth(
        &a, &b, header,
        R"({"reason":"concern_resolved","reason_detail":)" + detail + "}"));
    const size_t expected = detail == R"("")" ? 1u : 0u;
    EXPECT_EQ(a.unexplained_decisions.size(), expected) << detail;
    EXPECT_EQ(b.unexplained_decisions.size(), expected) << detail;
  }
}

}  // namespace
}  // namespace caseledger::domain

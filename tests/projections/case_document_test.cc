// A case's document and index entries made straight from its state must be
// what the way through nlohmann's document makes, byte for byte: the read
// models store them, and a rebuild must reproduce what was stored.
#include "projections/src/case_document.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "caseledger/service/case_service.h"
#include "caseledger/service/seed.h"
#include "projections/src/json_writer.h"
#include "projections/src/key_filter.h"
#include "tests/support/seeding.h"
#include "tests/support/test_support.h"

namespace caseledger::projections::internal {
namespace {

using Json = nlohmann::json;
using domain::CaseState;

// The reference: the index keys of a case as the read models computed them
// from its stored document until they were computed from its state (and as
// every list and governance view reads them).
const Json& Field(const Json& doc, const char* key) {
  static const Json kNull;
  auto it = doc.find(key);
  return it != doc.end() ? *it : kNull;
}

std::vector<std::string> KeysOfDocument(const Json& doc) {
  std::vector<std::string> keys;
  if (doc.is_null()) return keys;
  const std::string id = doc.value("case_id", "");
  keys.push_back(IndexPrefix(IndexTag::kAll, "") + id);
  keys.push_back(IndexPrefix(IndexTag::kStage, doc.value("stage", "")) + id);
  keys.push_back(IndexPrefix(IndexTag::kUrgency, doc.value("urgent", false)
                                                     ? "urgent"
                                                     : "standard") +
                 id);
  keys.push_back(
      IndexPrefix(IndexTag::kReporter, doc.value("reporter_actor_id", "")) +
      id);
  std::string lead = doc.value("lead_actor_id", "");
  if (!lead.empty()) keys.push_back(IndexPrefix(IndexTag::kLead, lead) + id);
  for (const auto& c : Field(doc, "categories")) {
    if (c.is_string())
      keys.push_back(IndexPrefix(IndexTag::kCategory, c.get<std::string>()) +
                     id);
  }
  // Governance: what is due, ordered by when (timestamps and dates in one
  // fixed format sort as they compare).
  const std::string stage = doc.value("stage", "");
  keys.push_back(
      IndexPrefix(IndexTag::kMonth, doc.value("reported_at", "").substr(0, 7)) +
      id);
  if (stage != "closed" && stage != "none") {
    keys.push_back(
        IndexPrefix(IndexTag::kOpenSince, doc.value("reported_at", "")) + id);
  }
  if (!doc.contains("acknowledged_at") && stage != "closed") {
    keys.push_back(IndexPrefix(IndexTag::kAckDue,
                               doc.value("acknowledgement_due_at", "")) +
                   id);
  }
  const Json& reviews = Field(doc, "reviews");
  const Json& escalations = Field(doc, "escalations");
  const Json& actions = Field(doc, "actions");
  if (stage != "closed") {
    for (const auto& [rid, r] : reviews.items()) {
      if (!r.value("completed", false)) {
        keys.push_back(IndexPrefix(IndexTag::kReviewDue,
                                   r.value("due_date", "") + "|" + rid) +
                       id);
      }
    }
  }
  for (const auto& [eid, e] : escalations.items()) {
    if (!e.value("acknowledged", false)) {
      keys.push_back(
          IndexPrefix(IndexTag::kEscalationDue,
                      e.value("acknowledgement_due_at", "") + "|" + eid) +
          id);
    }
  }
  for (const auto& oid : Field(doc, "overrides")) {
    if (oid.is_string())
      keys.push_back(IndexPrefix(IndexTag::kOverride, oid.get<std::string>()) +
                     id);
  }
  if (stage == "closed" && doc.value("closed_without_outcome_review", false)) {
    keys.push_back(IndexPrefix(IndexTag::kClosedWithoutReview, "") + id);
  }
  // Counts by setting and outcome (closure reason, outcomes achieved).
  keys.push_back(IndexPrefix(IndexTag::kSetting, doc.value("setting", "")) +
                 id);
  if (stage == "closed" && !doc.value("closure_reason", "").empty()) {
    keys.push_back(
        IndexPrefix(IndexTag::kClosureReason, doc.value("closure_reason", "")) +
        id);
  }
  if (!doc.value("outcomes_achieved", "").empty()) {
    keys.push_back(
        IndexPrefix(IndexTag::kOutcomes, doc.value("outcomes_achieved", "")) +
        id);
  }
  // Acknowledgement against its deadline: minutes taken (zero-padded, so
  // the index is sorted by them) and, when late, a breach.
  if (doc.contains("acknowledged_at")) {
    auto reported = ParseTimestamp(doc.value("reported_at", ""));
    auto acked = ParseTimestamp(doc.value("acknowledged_at", ""));
    if (reported.ok() && acked.ok()) {
      int64_t minutes =
          std::max<int64_t>(0, (acked->value() - reported->value()) / 60000000);
      char padded[24];
      std::snprintf(padded, sizeof(padded), "%012lld",
                    static_cast<long long>(minutes));
      keys.push_back(IndexPrefix(IndexTag::kAckMinutes, padded) + id);
    }
    const std::string due = doc.value("acknowledgement_due_at", "");
    const std::string at = doc.value("acknowledged_at", "");
    if (!due.empty() && at > due) {
      keys.push_back(IndexPrefix(IndexTag::kAckLate, due + "|" + at) + id);
    }
  }
  // Re-audits not yet done, by due date.
  const Json& reaudits = Field(doc, "reaudits");
  for (const auto& [rid, r] : reaudits.items()) {
    if (!r.value("done", false)) {
      keys.push_back(IndexPrefix(IndexTag::kReauditDue,
                                 r.value("due_date", "") + "|" + rid) +
                     id);
    }
  }
  // Decisions recorded without their rationale.
  for (const auto& d : Field(doc, "decisions_without_rationale")) {
    keys.push_back(
        IndexPrefix(IndexTag::kUnexplained,
                    d.value("type", "") + "|" + d.value("event_id", "")) +
        id);
  }
  const Json& due = Field(doc, "action_due");
  for (const auto& [aid, done] : actions.items()) {
    if (!done.is_boolean() || done.get<bool>()) continue;
    std::string d = due.contains(aid) && due[aid].is_string()
                        ? due[aid].get<std::string>()
                        : "";
    keys.push_back(IndexPrefix(IndexTag::kActionDue, d + "|" + aid) + id);
  }
  // Erasure requests awaiting a decision, a legal hold, what was erased,
  // and what retention may erase (closed, neither held nor erased).
  for (const auto& [eid, e] : Field(doc, "erasures").items()) {
    if (e.value("status", "") == "requested") {
      keys.push_back(IndexPrefix(IndexTag::kErasureRequested, eid) + id);
    }
  }
  const bool held = doc.value("legal_hold", false);
  const bool erased = doc.value("personal_data_erased", false);
  if (held) keys.push_back(IndexPrefix(IndexTag::kLegalHold, "") + id);
  if (erased) keys.push_back(IndexPrefix(IndexTag::kErased, "*") + id);
  for (const auto& ref : Field(doc, "erased_person_refs")) {
    keys.push_back(
        IndexPrefix(IndexTag::kErased, "person:" + ref.get<std::string>()) +
        id);
  }
  if (stage == "closed" && !held && !erased && doc.contains("closed_at")) {
    keys.push_back(
        IndexPrefix(IndexTag::kRetention,
                    doc.value("kind", "") + "|" + doc.value("closed_at", "")) +
        id);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

// What the read models stored before: ToJson, last_position, dump().
std::string ByDocument(const std::string& id, const CaseState& s,
                       uint64_t last_position) {
  Json doc = domain::ToJson(id, s);
  doc["last_position"] = last_position;
  return doc.dump();
}

void ExpectSameBothWays(const std::string& id, const CaseState& s,
                        uint64_t last_position) {
  const std::string want = ByDocument(id, s, last_position);
  ASSERT_EQ(CaseDocument(id, s, last_position), want);
  EXPECT_EQ(IndexKeys(id, s).ToVector(), KeysOfDocument(Json::parse(want)))
      << want;
}

class RandomState {
 public:
  explicit RandomState(uint32_t seed) : rng_(seed) {}

  size_t Pick(size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }
  // Ids and text, with what must be escaped, non-ASCII letters, and the
  // empty string.
  std::string Text() {
    static const std::vector<std::string> kTexts = {
        "",        "a-1",         "a-2",          "2026-01-31",
        "urgent",  "quote\"d",    "back\\slash",  "new\nline",
        "tab\t",   "bell\x07",    "nul",          std::string("\0x", 2),
        "del\x7f", "caf\xc3\xa9", "\xe2\x82\xac", "\x1f\x01\b\f\r",
        "zzz",     "closed"};
    return kTexts[Pick(kTexts.size())];
  }
  Timestamp Time() {
    // Around now, at the epoch, before it, and at microsecond precision.
    static const std::vector<int64_t> kBases = {
        1'764'000'000'000'000, 0, -86'400'000'001, 1'800'000'000'123'456};
    return Timestamp(kBases[Pick(kBases.size())] +
                     static_cast<int64_t>(Pick(5'000'000'000)));
  }

  CaseState Make() {
    CaseState s;
    s.version = Pick(1000);
    s.stage = static_cast<domain::Stage>(Pick(6));
    s.reporter_actor_id = Text();
    s.reported_at = Time();
    s.kind = Text();
    s.setting = Text();
    for (size_t i = 0, n = Pick(4); i < n; ++i) s.categories.push_back(Text());
    s.immediate_risk = Pick(2);
    s.urgent = Pick(2);
    s.under_18_involved = Pick(2);
    s.all_dsls_barred = Pick(2);
    for (size_t i = 0, n = Pick(3); i < n; ++i)
      s.barred_actor_ids.insert(Text());
    if (Pick(3)) s.lead_actor_id = Text();
    if (Pick(3)) s.lead_role = static_cast<domain::Role>(Pick(6));
    s.triage_route = Text();
    s.acknowledgement_due_at = Time();
    if (Pick(2)) s.acknowledged_at = Time();
    for (size_t i = 0, n = Pick(4); i < n; ++i) {
      s.consents.push_back({Text(), Text(), Text(), Text(), Pick(50)});
    }
    for (size_t i = 0, n = Pick(3); i < n; ++i) s.override_ids.insert(Text());
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      s.escalations[Text()] = {Text(), Text(), Time(), bool(Pick(2)),
                               bool(Pick(2))};
    }
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      s.reviews[Text()] = {Text(), Text(), bool(Pick(2))};
    }
    for (size_t i = 0, n = Pick(4); i < n; ++i) {
      const std::string a = Text();
      s.actions[a] = Pick(2);
      if (Pick(3)) s.action_due[Pick(4) ? a : Text()] = Text();
    }
    for (size_t i = 0, n = Pick(3); i < n; ++i) s.plan_ids.insert(Text());
    for (size_t i = 0, n = Pick(3); i < n; ++i) s.learning_ids.insert(Text());
    for (size_t i = 0, n = Pick(3); i < n; ++i) s.finding_ids.insert(Text());
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      domain::ReauditState& r = s.reaudits[Text()];
      r.due_date = Text();
      for (size_t j = 0, m = Pick(3); j < m; ++j) r.finding_ids.insert(Text());
      r.done = Pick(2);
    }
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      s.unexplained_decisions.push_back({Text(), Text(), Text()});
    }
    s.closure_reason = Text();
    s.outcomes_achieved = Text();
    s.closed_without_outcome_review = Pick(2);
    s.times_closed = static_cast<uint32_t>(Pick(4));
    s.times_reopened = static_cast<uint32_t>(Pick(4));
    s.closed_at = Time();
    s.legal_hold = Pick(2);
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      s.erasures[Text()] = {Text(), Text(), Text(), Text(), Text()};
    }
    s.erased = Pick(2);
    for (size_t i = 0, n = Pick(3); i < n; ++i) {
      s.erased_person_refs.insert(Text());
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

TEST(CaseDocumentTest, RandomStatesWriteWhatTheDocumentDumps) {
  RandomState r(5);
  for (int i = 0; i < 20000; ++i) {
    const CaseState s = r.Make();
    ExpectSameBothWays(r.Text(), s, r.Pick(1u << 30));
    if (HasFatalFailure()) return;
  }
  // Empty: every collection empty, every optional absent.
  ExpectSameBothWays("c", CaseState{}, 0);
  ExpectSameBothWays("c", CaseState{}, UINT64_MAX);
}

// Feed records: any members, in any order, written as nlohmann dumps the
// object they make; learning text escaped, any JSON value kept as it is.
TEST(CaseDocumentTest, RecordsWriteWhatTheDocumentDumps) {
  RandomState r(11);
  const std::vector<Writer::Name> keys = {
      "case",       "month",   "kind",   "seq",
      "categories", "setting", "urgent", "what_went_well",
      "themes",     "of_seq",  "reason", "outcome_review"};
  const std::vector<Json> anys = {Json::array(), Json{"a", "b\n"},
                                  Json{{"k", 1}, {"j", {true, nullptr}}},
                                  Json(-3.5), Json(nullptr)};
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::string> texts;  // the members' text lives here
    std::vector<std::vector<std::string>> lists;
    texts.reserve(keys.size());
    lists.reserve(keys.size());
    std::vector<Member> members;
    Json want = Json::object();
    for (const Writer::Name key : keys) {
      if (r.Pick(3) == 0) continue;
      const std::string name(key.view());
      switch (r.Pick(5)) {
        case 0:
          texts.push_back(r.Text());
          members.push_back(Member::Str(key, texts.back()));
          want[name] = texts.back();
          break;
        case 1: {
          const bool b = r.Pick(2);
          members.push_back(Member::Flag(key, b));
          want[name] = b;
          break;
        }
        case 2: {
          const uint64_t n = r.Pick(1u << 20) * r.Pick(1u << 20);
          members.push_back(Member::Num(key, n));
          want[name] = n;
          break;
        }
        case 3:
          lists.emplace_back();
          for (size_t j = 0, m = r.Pick(4); j < m; ++j) {
            lists.back().push_back(r.Text());
          }
          members.push_back(Member::Strs(key, lists.back()));
          want[name] = lists.back();
          break;
        default: {
          const Json& any = anys[r.Pick(anys.size())];
          members.push_back(Member::Any(key, any));
          want[name] = any;
        }
      }
    }
    std::shuffle(members.begin(), members.end(), std::mt19937(i));
    ASSERT_EQ(RecordText(members), want.dump());
  }
}

// Text that is not UTF-8 cannot be written as JSON: dump() throws, and so
// does the document (as it always has), never writing it as it is.
TEST(CaseDocumentTest, TextThatIsNotUtf8ThrowsAsDumpDoes) {
  CaseState s;
  s.setting = "bad \xc3";
  EXPECT_THROW(ByDocument("c", s, 1), nlohmann::json::type_error);
  EXPECT_THROW(CaseDocument("c", s, 1), nlohmann::json::type_error);
}

// Every case the seed generator makes, as folded from its stored events.
TEST(CaseDocumentTest, SeededCasesWriteWhatTheDocumentDumps) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  auto store = testing::OpenStore(dir.path(), o);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  service::SeedOptions so;
  so.cases = 60;
  testing::TestKeys data_keys(*catalog);
  ASSERT_OK(testing::SeedCases(*store, *catalog, data_keys.sealer(), so));
  auto events = store->ReadAll(GlobalPosition(0), 1u << 20);
  ASSERT_OK(events);
  std::set<std::string> cases;
  for (const RecordedEvent& e : *events) {
    if (service::IsCaseStream(e.stream_id)) cases.insert(e.stream_id);
  }
  ASSERT_GE(cases.size(), 60u);
  size_t keys = 0;
  for (const std::string& id : cases) {
    auto s = service::LoadCase(*store, **catalog, id);
    ASSERT_OK(s);
    ExpectSameBothWays(id, *s, s->version * 7);
    keys += IndexKeys(id, *s).size();
  }
  EXPECT_GT(keys, cases.size() * 5);
}

// A rebuild skips reading a key the filter says it never wrote: every key
// added must be "maybe"; most others "no".
TEST(KeyFilterTest, EveryKeyAddedIsMaybeAndFewOthersAre) {
  KeyFilter f;
  EXPECT_FALSE(f.MayContain("anything"));
  for (int i = 0; i < 300000; ++i)
    f.Add(std::string("class\0", 6) + std::to_string(i));
  for (int i = 0; i < 300000; ++i) {
    ASSERT_TRUE(f.MayContain(std::string("class\0", 6) + std::to_string(i)))
        << i;
  }
  int maybe = 0;
  for (int i = 300000; i < 400000; ++i) {
    maybe +=
        f.MayContain(std::string("class\0", 6) + std::to_string(i)) ? 1 : 0;
  }
  EXPECT_LT(maybe, 1000);  // under 1%
  f.Clear();
  EXPECT_FALSE(
      f.MayContain("class\0"
                   "1"));
}

}  // namespace
}  // namespace caseledger::projections::internal

// Every command's body, validated and decided, on a case open or closed,
// by each role: decide() answers with a Status and never throws (an
// exception on a worker once ended the server). The first byte picks the
// command, the case and the actor; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "caseledger/domain/decide.h"

namespace {

using caseledger::Timestamp;
using caseledger::domain::Actor;
using caseledger::domain::CaseState;
using caseledger::domain::Command;
using caseledger::domain::Decide;
using caseledger::domain::DomainConfig;
using caseledger::domain::DomainEvent;
using caseledger::domain::EventCatalog;
using caseledger::domain::Evolve;
using caseledger::domain::NewEvent;
using caseledger::domain::Role;
using Json = nlohmann::json;

const char* const kCommands[] = {"report",
                                 "assign-lead",
                                 "reassign-lead",
                                 "triage",
                                 "record-outcomes",
                                 "agree-participation",
                                 "assess-capacity",
                                 "record-consent",
                                 "override-consent",
                                 "share-information",
                                 "inform-person",
                                 "assess-risk",
                                 "agree-safety-plan",
                                 "raise-escalation",
                                 "acknowledge-escalation",
                                 "record-escalation-outcome",
                                 "schedule-review",
                                 "complete-review",
                                 "close",
                                 "reopen",
                                 "amend",
                                 "record-learning",
                                 "screen-learning",
                                 "assign-action",
                                 "complete-action",
                                 "sample-for-audit",
                                 "record-audit-finding",
                                 "schedule-reaudit",
                                 "request-erasure",
                                 "approve-erasure",
                                 "refuse-erasure",
                                 "place-legal-hold",
                                 "lift-legal-hold",
                                 "apply-retention"};
constexpr size_t kCommandCount = sizeof(kCommands) / sizeof(kCommands[0]);

const Actor kActors[] = {{"user:dsl-1", Role::kDsl},
                         {"user:alt-dsl-1", Role::kAltDsl},
                         {"user:reviewer-1", Role::kReviewer},
                         {"user:reporter-1", Role::kReporter},
                         {"user:admin-1", Role::kAdmin}};
constexpr size_t kActorCount = sizeof(kActors) / sizeof(kActors[0]);
const Timestamp kNow(1773328200000000);  // 2026-03-12T15:10:00Z

struct World {
  std::shared_ptr<const EventCatalog> catalog;
  DomainConfig config;
  CaseState fresh, open, closed;
  std::vector<DomainEvent> events;
};

// A case reported and led (open), and the same case closed with an erasure
// request pending: built through decide() itself from fixed bodies.
World* MakeWorld() {
  auto* w = new World;
  w->catalog = *EventCatalog::Load();
  w->config.retention_rules = {{"any-1y", "*", 1}};
  auto apply = [&](CaseState& s, const std::string& name, Json body,
                   const Actor& actor) {
    Command c{name, std::move(body), actor, kNow};
    auto out = Decide(s, c, *w->catalog, w->config);
    if (!out.ok()) __builtin_trap();  // the harness itself is wrong
    for (const NewEvent& e : *out) {
      DomainEvent d{{"ev-" + std::to_string(s.version + 1), e.type,
                     e.schema_version, actor, kNow},
                    e.payload};
      w->events.push_back(d);
      s = Evolve(std::move(s), d);
    }
  };
  CaseState s;
  std::ifstream in(std::string(CASELEDGER_SOURCE_DIR) +
                   "/scripts/examples/report.json");
  apply(s, "report", Json::parse(in), kActors[3]);
  apply(s, "assign-lead",
        {{"lead_actor_id", "user:dsl-1"},
         {"role", "dsl"},
         {"reason", "initial_assignment"}},
        kActors[0]);
  w->open = s;
  apply(s, "close",
        {{"reason", "person_declined_further_involvement"},
         {"no_review_reason", "person_declined_review"},
         {"feedback_to_reporter_given", false}},
        kActors[0]);
  apply(s, "request-erasure",
        {{"erasure_id", "er-1"},
         {"scope", "case"},
         {"legal_ground", "no_longer_necessary"},
         {"rationale", "Not needed."}},
        kActors[0]);
  w->closed = s;
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = MakeWorld();
  if (size < 1 || size > (64u << 10)) return 0;
  const uint8_t pick = data[0];
  Json body = Json::parse(data + 1, data + size, nullptr, false);
  if (body.is_discarded()) return 0;
  const CaseState& state = (pick & 0x80)   ? world->closed
                           : (pick & 0x40) ? world->open
                                           : world->fresh;
  const Actor& actor = kActors[((pick >> 3) & 0x7) % kActorCount];
  const std::string command = kCommands[pick % kCommandCount];
  Command c{command, std::move(body), actor, kNow};
  auto lookup = [&](const std::string& id) -> std::optional<DomainEvent> {
    for (const DomainEvent& e : world->events) {
      if (e.event_id == id) return e;
    }
    return std::nullopt;
  };
  auto decided = Decide(state, c, *world->catalog, world->config, lookup);
  if (decided.ok()) {
    // What decide() accepts, its schema accepts, and it folds.
    for (const NewEvent& e : *decided) {
      if (!world->catalog->Validate(e.type, e.schema_version, e.payload).ok()) {
        __builtin_trap();
      }
      DomainEvent d{{"ev-new", e.type, e.schema_version, actor, kNow},
                    e.payload};
      (void)Evolve(state, d);
    }
  }
  return 0;
}

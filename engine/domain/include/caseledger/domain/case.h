// The state of one case, folded from its events by Evolve(). Pure: no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/policy.h"
#include "caseledger/types.h"

namespace caseledger::domain {

enum class Stage {
  kNone,          // no event yet
  kReported,      // ConcernReported; no lead has taken it
  kAcknowledged,  // a lead has taken it (the first LeadAssigned)
  kOpen,          // triaged as a safeguarding case
  kTriagedOut,    // triaged elsewhere (not related, children's procedure,
                  // advice only); awaiting closure
  kClosed,
};
std::string_view StageName(Stage stage);

// The envelope fields of an event that evolve() reads.
struct EventHeader {
  std::string event_id;
  std::string type;
  uint32_t schema_version = 1;
  Actor actor;
  Timestamp recorded_at;
};

// A domain event as evolve() reads it: its envelope and the payload already
// upcast to the current schema version.
struct DomainEvent : EventHeader {
  nlohmann::json payload;
};

struct ConsentEntry {
  std::string consent_id;
  std::string person_ref;
  std::string purpose;
  std::string decision;  // given, refused, withdrawn, not_sought
  uint64_t version = 0;  // case version of the event that recorded it

  bool operator==(const ConsentEntry&) const = default;
};

struct EscalationState {
  std::string target;
  std::string urgency;
  Timestamp acknowledgement_due_at;
  bool acknowledged = false;
  bool final_outcome = false;

  bool operator==(const EscalationState&) const = default;
};

struct ReviewState {
  std::string kind;      // with_person, governance
  std::string due_date;  // YYYY-MM-DD
  bool completed = false;

  bool operator==(const ReviewState&) const = default;
};

struct ReauditState {
  std::string due_date;               // YYYY-MM-DD
  std::set<std::string> finding_ids;  // the findings it re-checks
  bool done = false;  // a finding re-auditing one of them was recorded

  bool operator==(const ReauditState&) const = default;
};

// An erasure request (ErasureRequested) and what became of it.
struct ErasureRequest {
  std::string scope;       // case, person
  std::string person_ref;  // scope person
  std::string legal_ground;
  std::string requested_by;  // actor id: approval needs someone else
  std::string status;        // requested, approved, refused

  bool operator==(const ErasureRequest&) const = default;
};

// A decision whose event leaves out the explanation its schema allows
// (governance: "decisions recorded without a rationale"), until an
// amendment of that event supplies it.
struct UnexplainedDecision {
  std::string event_id;
  std::string type;
  std::string missing;  // the payload field left out

  bool operator==(const UnexplainedDecision&) const = default;
};

// The events a case holds, for the commands that name one (an amendment
// names the event it amends, with its type and schema version as stored; a
// reopening may name the event that brought new information): each event's
// id, type and schema version, in the order folded. Flat: a fold adds one
// per event, and a map node with two strings of its own per event made
// three allocations per event, to make and to free (a rebuild folds a
// million events).
class CaseEvents {
 public:
  struct Found {
    std::string_view type;
    uint32_t schema_version = 0;
  };
  void Add(std::string_view event_id, std::string_view type,
           uint32_t schema_version);
  // The event with this id, if any (the latest added, were one added twice).
  std::optional<Found> Find(std::string_view event_id) const;
  size_t size() const { return entries_.size(); }
  // Whether `type` is one of the event types every case shares one copy of
  // (the events of decide()'s commands; any other is kept by the case).
  static bool Shared(std::string_view type);

  bool operator==(const CaseEvents&) const = default;

 private:
  struct Entry {
    uint32_t id_offset = 0;  // in ids_
    uint32_t id_size = 0;
    // A shared type's index; else the shared types' count plus its index
    // in types_.
    uint32_t type = 0;
    uint32_t schema_version = 0;

    bool operator==(const Entry&) const = default;
  };
  std::string ids_;                 // every id, one after another
  std::vector<std::string> types_;  // each other type once, as first seen
  std::vector<Entry> entries_;
};

struct CaseState {
  uint64_t version = 0;
  Stage stage = Stage::kNone;
  std::string reporter_actor_id;
  Timestamp reported_at;  // when the report was recorded
  std::string kind;       // concern, incident, ...
  std::string setting;
  std::vector<std::string> categories;  // as amended
  bool immediate_risk = false;
  bool urgent = false;
  bool under_18_involved = false;
  // The concern names a DSL (a person involved flagged is_dsl): the case
  // must be led by an alternative DSL.
  bool dsl_named = false;
  // When the named DSL has no actor id, every DSL-role actor is barred.
  bool all_dsls_barred = false;
  std::set<std::string> barred_actor_ids;
  std::set<std::string> person_refs;
  std::optional<std::string> lead_actor_id;
  std::optional<Role> lead_role;
  std::string triage_route;
  Timestamp acknowledgement_due_at;
  std::optional<Timestamp> acknowledged_at;
  // Every consent decision ever recorded, in order: wishes change, history
  // stays.
  std::vector<ConsentEntry> consents;
  std::set<std::string> override_ids;
  std::map<std::string, EscalationState> escalations;
  std::map<std::string, ReviewState> reviews;
  std::map<std::string, bool> actions;            // action_id -> completed
  std::map<std::string, std::string> action_due;  // action_id -> YYYY-MM-DD
  std::set<std::string> plan_ids;
  std::set<std::string> share_ids;
  std::set<std::string> learning_ids;
  std::set<std::string> finding_ids;
  std::set<std::string> reaudit_ids;
  std::map<std::string, ReauditState> reaudits;
  std::vector<UnexplainedDecision> unexplained_decisions;
  std::string closure_reason;     // of the last closure
  std::string outcomes_achieved;  // of the last review with the person
  std::set<std::string> sample_ids;
  std::set<std::string> outcome_ids;
  CaseEvents events;
  // The last closure had no outcome review (a reason was recorded instead).
  bool closed_without_outcome_review = false;
  uint32_t times_closed = 0;
  uint32_t times_reopened = 0;
  Timestamp closed_at;  // of the last closure (times_closed > 0)
  // On legal hold: nothing of the case may be erased, by request or by
  // retention.
  bool legal_hold = false;
  std::map<std::string, ErasureRequest> erasures;  // by erasure id
  // Personal data erased (its keys destroyed): the whole case's, or these
  // people's. An erased case takes no more commands; a command naming an
  // erased person is refused.
  bool erased = false;
  std::set<std::string> erased_person_refs;

  // Whether `actor` is barred from the case (a conflict of interest).
  bool IsBarred(const Actor& actor) const;
  // The latest consent decision for a person and purpose, if any.
  const ConsentEntry* CurrentConsent(const std::string& person_ref,
                                     const std::string& purpose) const;

  // Every field equal (tests compare folds made in different ways).
  bool operator==(const CaseState&) const = default;
};

// Whether `actor` may make `read` of this case: the role must allow it, the
// actor must not be barred from the case, and a reporter sees only the cases
// they reported.
bool CanReadCase(const CaseState& state, const Actor& actor, Read read);

// The state as a JSON document (what a DSL sees of the case now, and what
// replay shows at each step).
nlohmann::json ToJson(const std::string& case_id, const CaseState& state);

// Applies one event. Events come from the log, which decide() wrote, so
// evolve() trusts them; it never fails.
CaseState Evolve(CaseState state, const DomainEvent& event);
// (evolve_in_place.h: the same, in place, on a payload as simdjson parsed
// it, for the read models.)

}  // namespace caseledger::domain

// decide(): a command against a case's state -> the events to append, or a
// rejection that says which field and why. Pure: the clock, the
// configuration and the one lookup an amendment needs are passed in.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/domain/policy.h"
#include "caseledger/status.h"
#include "caseledger/types.h"

namespace caseledger::domain {

// A retention rule: a closed case's personal data is erased this many years
// after its (last) closure, unless it is on legal hold. The periods are
// minimums (Records Management Code): a rule applies from that day on, by
// the daily sweep or an admin's apply-retention command.
struct RetentionRule {
  std::string name;  // an id; PersonalDataErased names it
  std::string kind;  // the concern kind it covers; "*": any kind without a
                     // rule of its own
  int years = 0;     // at least 1
};

// Deadlines, from configuration. Defaults follow the seeds: acknowledge an
// urgent report within the hour, any other within a working day.
struct DomainConfig {
  std::chrono::minutes acknowledge_urgent{60};
  std::chrono::minutes acknowledge_standard{24 * 60};
  std::chrono::minutes escalation_emergency{60};
  std::chrono::minutes escalation_urgent{4 * 60};
  std::chrono::minutes escalation_standard{2 * 24 * 60};
  // A review scheduled without a due date is due this many days on.
  int review_interval_days = 28;
  // Empty: nothing is erased by retention.
  std::vector<RetentionRule> retention_rules;
};

// The retention rule that covers a case of `kind`: its kind's own, else the
// "*" rule; nullptr if none.
const RetentionRule* RetentionRuleFor(const DomainConfig& config,
                                      std::string_view kind);

// When `rule` lets a case closed at `closed_at` be erased: the same
// calendar day and time `rule.years` later (29 February: 1 March).
Timestamp RetentionEndsAt(const RetentionRule& rule, Timestamp closed_at);

struct Command {
  std::string name;     // e.g. "report", "triage", "record-consent"
  nlohmann::json body;  // the request body: the event payload's fields,
                        // less those decide() sets itself
  Actor actor;
  Timestamp now;  // the server clock
};

struct NewEvent {
  std::string type;
  uint32_t schema_version = 1;
  nlohmann::json payload;
};

// For "amend": the stored payload (upcast) and schema version of an event of
// this case, by id; nullopt if the case has no such event.
using EventLookup =
    std::function<std::optional<DomainEvent>(const std::string& event_id)>;

// Rejections:
//   kInvalidArgument (with field()) the body does not match the event's
//                        schema, or names something the case does not have;
//   kFailedPrecondition  the case's state does not allow the command (not
//                        reported yet, closed, no lead, ...);
//   kAlreadyExists       an id the command introduces is already used;
//   kPermissionDenied    the role may not issue the command, or the actor is
//                        barred from this case (conflict of interest).
StatusOr<std::vector<NewEvent>> Decide(const CaseState& state,
                                       const Command& command,
                                       const EventCatalog& catalog,
                                       const DomainConfig& config,
                                       const EventLookup& lookup = nullptr);

// The event type a command produces ("" for an unknown command).
std::string EventTypeOf(std::string_view command);

// The fields of a command's payload that the server sets (a deadline, a
// priority, what an approval copies from its request): a payload that
// sets one is refused. Empty for most commands.
const std::vector<std::string>& ServerOwnedFields(std::string_view command);

}  // namespace caseledger::domain

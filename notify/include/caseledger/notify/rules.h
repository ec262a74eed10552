// The alerting rules: which events and deadlines notify whom, and what a
// notification says. Pure functions of a case's folded state: no I/O, no
// clock but the one passed in.
//
// A notification never carries personal data (e-mail is not a secure
// channel): it says what kind of thing happened, on which case reference,
// how urgent it is and by when, and links to the case in the console.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/status.h"

namespace caseledger::notify {

// Whom a rule names: a configured group, or the case's lead.
enum class Audience {
  kDsl,        // every configured DSL
  kAltDsl,     // every configured alternative DSL
  kLead,       // the case's lead, once one is assigned
  kLeadOrDsl,  // the lead, or every DSL while none is assigned
};
std::optional<Audience> ParseAudience(std::string_view name);
std::string_view AudienceName(Audience a);

// The deadlines a rule can watch.
enum class Deadline {
  kAcknowledgement,            // a lead takes the report
  kEscalationAcknowledgement,  // the agency acknowledges an escalation
  kReview,                     // a scheduled review is completed
  kAction,                     // an assigned action is completed
};
std::optional<Deadline> ParseDeadline(std::string_view name);
std::string_view DeadlineName(Deadline d);

// Which events of a type an event rule takes.
enum class When {
  kAlways,
  kUrgent,  // the case is urgent (its report's priority)
  kNotUrgent,
  kLeadBarred,  // the event left the case's lead barred from it
};
std::optional<When> ParseWhen(std::string_view name);
std::string_view WhenName(When w);

// One rule. Exactly one of `event` (an event type, or "*" for any) and
// `deadline` is set.
struct Rule {
  std::string name;  // stable: part of every notification id it makes
  std::string event;
  std::optional<Deadline> deadline;
  When when = When::kAlways;  // event rules
  std::vector<Audience> to;
  // Event rules: sent this long after the event. With
  // `unless_acknowledged`, dropped if a lead has taken the case by then.
  std::chrono::minutes delay{0};
  bool unless_acknowledged = false;
  // Deadline rules: if the deadline is still not met this long after it
  // passed, `repeat_to` is told (empty: nobody).
  std::vector<Audience> repeat_to;
  std::chrono::minutes repeat_after{60};
};

// The rules used when the configuration names none: a new concern to the
// DSLs and alternative DSLs (urgent at once, otherwise within 15 minutes
// unless a lead took it in the meantime), an escalation raised, a lead
// barred from the case (to the alternative DSLs only), and every deadline
// passed (to the lead, or the DSLs), repeated to the alternative DSLs an
// hour later if still not met.
std::vector<Rule> DefaultRules();

// Checks a rule set: names unique and non-empty, one trigger each, someone
// to tell. kInvalidArgument naming the rule.
Status CheckRules(const std::vector<Rule>& rules);

// The people notifications may go to, by role: configuration, never code.
struct Directory {
  std::vector<std::string> dsl;      // actor ids of the DSLs
  std::vector<std::string> alt_dsl;  // actor ids of the alternative DSLs
};

// One notification to one person, before it is given its channels.
struct Notice {
  std::string rule;
  std::string kind;  // concern_reported, escalation_raised, lead_barred,
                     // <deadline>_overdue, <deadline>_still_overdue, ...
  std::string case_id;
  std::string urgency;  // urgent, standard (a report), or the escalation's
  Timestamp due;        // by when the thing asked for is due (0: none)
  Timestamp send_at;    // not before
  domain::Actor recipient;
  // Where it comes from: "event:<event id>" or "timer:<key>:<due>:<stage>".
  // With the rule, recipient and channel it makes the notification's id, so
  // that planning it again (after a crash) makes the same one.
  std::string source;
  bool unless_acknowledged = false;
};

// A deadline being watched: it fires at `fire_at`.
struct Timer {
  std::string rule;
  std::string case_id;
  Deadline deadline = Deadline::kAcknowledgement;
  std::string item;  // the escalation, review or action id ("" for the
                     // acknowledgement)
  Timestamp due;
  uint32_t stage = 0;  // 0: at the deadline; 1: the repeat
  Timestamp fire_at;

  // One timer per rule, case and item: a new one replaces it.
  std::string Key() const;
  nlohmann::json ToJson() const;
  static StatusOr<Timer> FromJson(const nlohmann::json& j);
};

struct Plan {
  std::vector<Notice> notices;
  std::vector<Timer> timers;  // each replaces any with its key
};

// After one event of a case (`before` and `after` it): what to tell whom,
// and which deadlines to watch. A `history` event (recorded before alerting
// was first enabled) notifies nobody; its deadlines are still watched.
// Nobody barred from the case is told, nor the event's own actor.
Plan OnEvent(const std::vector<Rule>& rules, const Directory& directory,
             const std::string& case_id, const domain::CaseState& before,
             const domain::CaseState& after, const domain::EventHeader& event,
             bool history);

// A watched deadline's time came (`state`: the case now): whom to tell that
// it passed unmet, and what to watch next (the repeat, or the deadline
// again if it moved later). Nothing once it is met, the case closed or its
// data erased.
Plan OnTimer(const std::vector<Rule>& rules, const Directory& directory,
             const domain::CaseState& state, const Timer& timer, Timestamp now);

// Whether a planned notice should still be sent, given the case as it is
// when it is about to go: nobody barred from the case since, no erased
// case, and not once a lead took the case if it said `unless_acknowledged`.
// Empty if so; otherwise why not.
std::string WithheldBecause(const domain::CaseState& state,
                            const Notice& notice);

// When a YYYY-MM-DD due date has passed: the start of the next day, UTC.
// 0 if the date does not parse.
Timestamp EndOfDay(std::string_view date);

// What a notification says, on every channel. `console_url` is where the
// console is served (the case link is <console_url>/#/case/<case id>);
// empty: no link.
struct Message {
  std::string type;     // caseledger.<kind>
  std::string subject;  // one line, ASCII
  std::string text;     // the e-mail body, plain text
  nlohmann::json data;  // the webhook payload's "data"
};
Message Render(const Notice& notice, std::string_view id,
               std::string_view console_url);

}  // namespace caseledger::notify

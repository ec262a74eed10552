#include "caseledger/notify/rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace caseledger::notify {
namespace {

constexpr int64_t kMinute = int64_t{60} * 1000000;
constexpr int64_t kDay = int64_t{24} * 60 * kMinute;

Timestamp Plus(Timestamp t, std::chrono::minutes m) {
  return Timestamp(t.value() + m.count() * kMinute);
}

bool LeadBarred(const domain::CaseState& s) {
  return s.lead_actor_id &&
         s.IsBarred(domain::Actor{*s.lead_actor_id,
                                  s.lead_role.value_or(domain::Role::kDsl)});
}

// The people `audiences` name on this case: not barred from it, not
// `exclude`, each once, in the order named.
std::vector<domain::Actor> Resolve(const std::vector<Audience>& audiences,
                                   const Directory& dir,
                                   const domain::CaseState& state,
                                   const std::string& exclude) {
  std::vector<domain::Actor> out;
  std::set<std::string> seen;
  // Someone barred in one role is not told in another (an id listed as
  // both a DSL and an alternative, say): the first role named decides.
  auto add = [&](const std::string& id, domain::Role role) {
    if (id.empty() || id == exclude || !seen.insert(id).second) return;
    domain::Actor a{id, role};
    if (state.IsBarred(a)) return;
    out.push_back(std::move(a));
  };
  auto dsls = [&] {
    for (const std::string& id : dir.dsl) add(id, domain::Role::kDsl);
  };
  auto lead = [&] {
    if (state.lead_actor_id) {
      add(*state.lead_actor_id, state.lead_role.value_or(domain::Role::kDsl));
    }
  };
  for (Audience a : audiences) {
    switch (a) {
      case Audience::kDsl:
        dsls();
        break;
      case Audience::kAltDsl:
        for (const std::string& id : dir.alt_dsl) {
          add(id, domain::Role::kAltDsl);
        }
        break;
      case Audience::kLead:
        lead();
        break;
      case Audience::kLeadOrDsl:
        // A barred lead is as good as none: the DSLs are told.
        if (state.lead_actor_id && !LeadBarred(state)) {
          lead();
        } else {
          dsls();
        }
        break;
    }
  }
  return out;
}

std::string ReportUrgency(const domain::CaseState& s) {
  return s.urgent ? "urgent" : "standard";
}

bool Matches(When when, const domain::CaseState& before,
             const domain::CaseState& after) {
  switch (when) {
    case When::kAlways:
      return true;
    case When::kUrgent:
      return after.urgent;
    case When::kNotUrgent:
      return !after.urgent;
    case When::kLeadBarred:
      // Newly so: the lead changed, or the same lead became barred.
      return LeadBarred(after) &&
             !(LeadBarred(before) &&
               before.lead_actor_id == after.lead_actor_id);
  }
  return false;
}

// The kind an event rule's notices say, from the event's type.
std::string EventKind(const Rule& rule, std::string_view type) {
  if (rule.when == When::kLeadBarred) return "lead_barred";
  std::string kind;
  for (char c : type) {
    if (c >= 'A' && c <= 'Z') {
      if (!kind.empty()) kind += '_';
      kind += static_cast<char>(c - 'A' + 'a');
    } else {
      kind += c;
    }
  }
  return kind;
}

// What an event's notice says of urgency and due time: an escalation's
// own, else the report's acknowledgement.
void Describe(const domain::CaseState& before, const domain::CaseState& after,
              std::string_view type, Notice* n) {
  if (type == "EscalationRaised") {
    for (const auto& [id, e] : after.escalations) {
      if (!before.escalations.count(id)) {
        n->urgency = e.urgency;
        n->due = e.acknowledgement_due_at;
        return;
      }
    }
  }
  n->urgency = ReportUrgency(after);
  if (after.stage == domain::Stage::kReported) {
    n->due = after.acknowledgement_due_at;
  }
}

// The deadline's current due time on the case; nullopt once it is met or
// no longer exists.
std::optional<Timestamp> OpenDeadline(const domain::CaseState& s, Deadline d,
                                      const std::string& item) {
  switch (d) {
    case Deadline::kAcknowledgement:
      if (s.stage != domain::Stage::kReported ||
          s.acknowledgement_due_at.value() == 0) {
        return std::nullopt;
      }
      return s.acknowledgement_due_at;
    case Deadline::kEscalationAcknowledgement: {
      auto it = s.escalations.find(item);
      if (it == s.escalations.end() || it->second.acknowledged ||
          it->second.acknowledgement_due_at.value() == 0) {
        return std::nullopt;
      }
      return it->second.acknowledgement_due_at;
    }
    case Deadline::kReview: {
      auto it = s.reviews.find(item);
      if (it == s.reviews.end() || it->second.completed) return std::nullopt;
      Timestamp t = EndOfDay(it->second.due_date);
      if (t.value() == 0) return std::nullopt;
      return t;
    }
    case Deadline::kAction: {
      auto it = s.action_due.find(item);
      if (it == s.action_due.end()) return std::nullopt;
      auto done = s.actions.find(item);
      if (done != s.actions.end() && done->second) return std::nullopt;
      Timestamp t = EndOfDay(it->second);
      if (t.value() == 0) return std::nullopt;
      return t;
    }
  }
  return std::nullopt;
}

// The items of a deadline on a case.
std::vector<std::string> Items(const domain::CaseState& s, Deadline d) {
  std::vector<std::string> items;
  switch (d) {
    case Deadline::kAcknowledgement:
      items.emplace_back();
      break;
    case Deadline::kEscalationAcknowledgement:
      for (const auto& [id, e] : s.escalations) items.push_back(id);
      break;
    case Deadline::kReview:
      for (const auto& [id, r] : s.reviews) items.push_back(id);
      break;
    case Deadline::kAction:
      for (const auto& [id, due] : s.action_due) items.push_back(id);
      break;
  }
  return items;
}

bool Live(const domain::CaseState& s) {
  return !s.erased && s.stage != domain::Stage::kClosed &&
         s.stage != domain::Stage::kNone;
}

std::string UrgencyAt(const domain::CaseState& s, Deadline d,
                      const std::string& item) {
  if (d == Deadline::kEscalationAcknowledgement) {
    auto it = s.escalations.find(item);
    if (it != s.escalations.end()) return it->second.urgency;
  }
  return ReportUrgency(s);
}

}  // namespace

std::optional<Audience> ParseAudience(std::string_view name) {
  if (name == "dsl") return Audience::kDsl;
  if (name == "alt_dsl") return Audience::kAltDsl;
  if (name == "lead") return Audience::kLead;
  if (name == "lead_or_dsl") return Audience::kLeadOrDsl;
  return std::nullopt;
}

std::string_view AudienceName(Audience a) {
  switch (a) {
    case Audience::kDsl:
      return "dsl";
    case Audience::kAltDsl:
      return "alt_dsl";
    case Audience::kLead:
      return "lead";
    case Audience::kLeadOrDsl:
      return "lead_or_dsl";
  }
  return "";
}

std::optional<Deadline> ParseDeadline(std::string_view name) {
  if (name == "acknowledgement") return Deadline::kAcknowledgement;
  if (name == "escalation_acknowledgement") {
    return Deadline::kEscalationAcknowledgement;
  }
  if (name == "review") return Deadline::kReview;
  if (name == "action") return Deadline::kAction;
  return std::nullopt;
}

std::string_view DeadlineName(Deadline d) {
  switch (d) {
    case Deadline::kAcknowledgement:
      return "acknowledgement";
    case Deadline::kEscalationAcknowledgement:
      return "escalation_acknowledgement";
    case Deadline::kReview:
      return "review";
    case Deadline::kAction:
      return "action";
  }
  return "";
}

std::optional<When> ParseWhen(std::string_view name) {
  if (name == "always") return When::kAlways;
  if (name == "urgent") return When::kUrgent;
  if (name == "not_urgent") return When::kNotUrgent;
  if (name == "lead_barred") return When::kLeadBarred;
  return std::nullopt;
}

std::string_view WhenName(When w) {
  switch (w) {
    case When::kAlways:
      return "always";
    case When::kUrgent:
      return "urgent";
    case When::kNotUrgent:
      return "not_urgent";
    case When::kLeadBarred:
      return "lead_barred";
  }
  return "";
}

std::vector<Rule> DefaultRules() {
  using A = Audience;
  std::vector<Rule> rules;
  auto event = [&](std::string name, std::string type, When when,
                   std::vector<Audience> to, int delay, bool unless) {
    Rule r;
    r.name = std::move(name);
    r.event = std::move(type);
    r.when = when;
    r.to = std::move(to);
    r.delay = std::chrono::minutes(delay);
    r.unless_acknowledged = unless;
    rules.push_back(std::move(r));
  };
  event("urgent-concern", "ConcernReported", When::kUrgent,
        {A::kDsl, A::kAltDsl}, 0, false);
  event("concern", "ConcernReported", When::kNotUrgent, {A::kDsl, A::kAltDsl},
        15, true);
  event("escalation-raised", "EscalationRaised", When::kAlways,
        {A::kLeadOrDsl, A::kAltDsl}, 0, false);
  event("lead-barred", "*", When::kLeadBarred, {A::kAltDsl}, 0, false);
  for (Deadline d :
       {Deadline::kAcknowledgement, Deadline::kEscalationAcknowledgement,
        Deadline::kReview, Deadline::kAction}) {
    Rule r;
    r.name = std::string(DeadlineName(d)) + "-overdue";
    std::replace(r.name.begin(), r.name.end(), '_', '-');
    r.deadline = d;
    r.to = {d == Deadline::kAcknowledgement ? A::kDsl : A::kLeadOrDsl};
    r.repeat_to = {A::kAltDsl};
    r.repeat_after = std::chrono::minutes(60);
    rules.push_back(std::move(r));
  }
  return rules;
}

Status CheckRules(const std::vector<Rule>& rules) {
  std::set<std::string> names;
  for (size_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    const std::string where = fmt::format("rule {} ({})", i, r.name);
    if (r.name.empty()) {
      return Status::InvalidArgument(fmt::format("rule {} has no name", i));
    }
    if (!names.insert(r.name).second) {
      return Status::InvalidArgument(where + ": the name is used twice");
    }
    if (r.event.empty() == !r.deadline.has_value()) {
      return Status::InvalidArgument(
          where + ": name exactly one of an event and a deadline");
    }
    if (r.to.empty()) {
      return Status::InvalidArgument(where + ": tells nobody (\"to\")");
    }
    if (r.deadline && (r.when != When::kAlways || r.delay.count() != 0 ||
                       r.unless_acknowledged)) {
      return Status::InvalidArgument(
          where + ": a deadline rule takes no condition or delay");
    }
    if (!r.deadline && !r.repeat_to.empty()) {
      return Status::InvalidArgument(where + ": only a deadline rule repeats");
    }
    if (r.delay.count() < 0 || r.repeat_after.count() < 0) {
      return Status::InvalidArgument(where + ": a negative time");
    }
  }
  return Status::OK();
}

std::string Timer::Key() const {
  std::string k;
  k.reserve(rule.size() + case_id.size() + item.size() + 32);
  k += rule;
  k += '\x1f';
  k += case_id;
  k += '\x1f';
  k += DeadlineName(deadline);
  k += '\x1f';
  k += item;
  return k;
}

nlohmann::json Timer::ToJson() const {
  return {{"rule", rule},
          {"case_id", case_id},
          {"deadline", DeadlineName(deadline)},
          {"item", item},
          {"due", due.value()},
          {"stage", stage},
          {"fire_at", fire_at.value()}};
}

StatusOr<Timer> Timer::FromJson(const nlohmann::json& j) {
  try {
    Timer t;
    t.rule = j.at("rule").get<std::string>();
    t.case_id = j.at("case_id").get<std::string>();
    auto d = ParseDeadline(j.at("deadline").get<std::string>());
    if (!d) return Status::Corruption("a stored timer names no deadline");
    t.deadline = *d;
    t.item = j.at("item").get<std::string>();
    t.due = Timestamp(j.at("due").get<int64_t>());
    t.stage = j.at("stage").get<uint32_t>();
    t.fire_at = Timestamp(j.at("fire_at").get<int64_t>());
    return t;
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("a stored timer: ") + e.what());
  }
}

Plan OnEvent(const std::vector<Rule>& rules, const Directory& directory,
             const std::string& case_id, const domain::CaseState& before,
             const domain::CaseState& after, const domain::EventHeader& event,
             bool history) {
  Plan plan;
  for (const Rule& rule : rules) {
    if (rule.deadline) {
      // Watch each deadline that is new or moved; a met one needs no
      // timer (one already set finds it met when it fires).
      if (!Live(after)) continue;
      for (const std::string& item : Items(after, *rule.deadline)) {
        std::optional<Timestamp> due =
            OpenDeadline(after, *rule.deadline, item);
        if (!due) continue;
        // A case reopened watches its deadlines again: whatever fired
        // while it was closed found nothing to chase.
        std::optional<Timestamp> was =
            Live(before) ? OpenDeadline(before, *rule.deadline, item)
                         : std::nullopt;
        if (was && *was == *due) continue;
        Timer t;
        t.rule = rule.name;
        t.case_id = case_id;
        t.deadline = *rule.deadline;
        t.item = item;
        t.due = *due;
        t.fire_at = *due;
        plan.timers.push_back(std::move(t));
      }
      continue;
    }
    if (history || after.erased) continue;
    if (rule.event != "*" && rule.event != event.type) continue;
    if (!Matches(rule.when, before, after)) continue;
    Notice base;
    base.rule = rule.name;
    base.kind = EventKind(rule, event.type);
    base.case_id = case_id;
    Describe(before, after, event.type, &base);
    base.send_at = Plus(event.recorded_at, rule.delay);
    base.source = "event:" + event.event_id;
    base.unless_acknowledged = rule.unless_acknowledged;
    for (domain::Actor& who :
         Resolve(rule.to, directory, after, event.actor.id)) {
      Notice n = base;
      n.recipient = std::move(who);
      plan.notices.push_back(std::move(n));
    }
  }
  return plan;
}

Plan OnTimer(const std::vector<Rule>& rules, const Directory& directory,
             const domain::CaseState& state, const Timer& timer,
             Timestamp now) {
  Plan plan;
  auto rule = std::find_if(rules.begin(), rules.end(), [&](const Rule& r) {
    return r.name == timer.rule && r.deadline == timer.deadline;
  });
  if (rule == rules.end() || !Live(state)) return plan;
  std::optional<Timestamp> due =
      OpenDeadline(state, timer.deadline, timer.item);
  if (!due) return plan;
  if (*due != timer.due) {
    // The deadline moved: watch its new time from the start.
    Timer t = timer;
    t.due = *due;
    t.stage = 0;
    t.fire_at = *due;
    if (t.fire_at.value() <= now.value()) {
      return OnTimer(rules, directory, state, t, now);
    }
    plan.timers.push_back(std::move(t));
    return plan;
  }
  const bool repeat = timer.stage > 0;
  const std::vector<Audience>& to = repeat ? rule->repeat_to : rule->to;
  Notice base;
  base.rule = rule->name;
  base.kind = std::string(DeadlineName(timer.deadline)) +
              (repeat ? "_still_overdue" : "_overdue");
  base.case_id = timer.case_id;
  base.urgency = UrgencyAt(state, timer.deadline, timer.item);
  base.due = timer.due;
  base.send_at = now;
  base.source = fmt::format("timer:{}:{}:{}", timer.Key(), timer.due.value(),
                            timer.stage);
  for (domain::Actor& who : Resolve(to, directory, state, "")) {
    Notice n = base;
    n.recipient = std::move(who);
    plan.notices.push_back(std::move(n));
  }
  if (!repeat && !rule->repeat_to.empty()) {
    Timer t = timer;
    t.stage = 1;
    t.fire_at = Plus(timer.due, rule->repeat_after);
    if (t.fire_at.value() < now.value()) t.fire_at = now;
    plan.timers.push_back(std::move(t));
  }
  return plan;
}

std::string WithheldBecause(const domain::CaseState& state,
                            const Notice& notice) {
  if (state.erased) return "the case's personal data was erased";
  if (state.IsBarred(notice.recipient)) {
    return "the recipient is now barred from the case";
  }
  if (notice.unless_acknowledged && state.acknowledged_at) {
    return "a lead took the case before it was due to be sent";
  }
  return "";
}

Timestamp EndOfDay(std::string_view date) {
  auto t = ParseTimestamp(std::string(date) + "T00:00:00Z");
  if (!t.ok()) return Timestamp(0);
  return Timestamp(t->value() + kDay);
}

namespace {

std::string Headline(const std::string& kind) {
  if (kind == "concern_reported") return "New safeguarding concern reported";
  if (kind == "escalation_raised") return "Case escalated";
  if (kind == "lead_barred") {
    return "The case's lead is barred from it: it needs a new lead";
  }
  static const std::pair<const char*, const char*> kDeadlines[] = {
      {"acknowledgement", "Report not yet acknowledged by a lead"},
      {"escalation_acknowledgement", "Escalation not yet acknowledged"},
      {"review", "Review overdue"},
      {"action", "Action overdue"},
  };
  for (const auto& [name, text] : kDeadlines) {
    if (kind == std::string(name) + "_overdue") return text;
    if (kind == std::string(name) + "_still_overdue") {
      return std::string(text) + " (still, an hour or more on)";
    }
  }
  std::string t = kind;
  std::replace(t.begin(), t.end(), '_', ' ');
  if (!t.empty() && t[0] >= 'a' && t[0] <= 'z')
    t[0] = static_cast<char>(t[0] - 'a' + 'A');
  return "Case updated: " + t;
}

}  // namespace

Message Render(const Notice& n, std::string_view id,
               std::string_view console_url) {
  Message m;
  m.type = "caseledger." + n.kind;
  const std::string headline = Headline(n.kind);
  const bool urgent = n.urgency == "urgent" || n.urgency == "emergency" ||
                      n.urgency == "immediate";
  m.subject = fmt::format("[caseledger] {}{} ({})", urgent ? "URGENT: " : "",
                          headline, n.case_id);
  std::string link;
  if (!console_url.empty()) {
    std::string_view base = console_url;
    while (!base.empty() && base.back() == '/') base.remove_suffix(1);
    link = fmt::format("{}/#/case/{}", base, n.case_id);
  }
  m.text = headline + ".\r\n\r\n";
  m.text += "Case: " + n.case_id + "\r\n";
  m.text += "Urgency: " + n.urgency + "\r\n";
  if (n.due.value() != 0)
    m.text += "Due by: " + FormatTimestamp(n.due) + "\r\n";
  if (!link.empty()) m.text += "Open the case: " + link + "\r\n";
  m.text +=
      "\r\nThis message holds no personal details: sign in to the console "
      "to see the case.\r\n";
  m.text += "Notification: " + std::string(id) + "\r\n";
  m.data = {{"kind", n.kind},
            {"case_id", n.case_id},
            {"urgency", n.urgency},
            {"recipient", n.recipient.id},
            {"summary", headline}};
  if (n.due.value() != 0) m.data["due"] = FormatTimestamp(n.due);
  if (!link.empty()) m.data["link"] = link;
  return m;
}

}  // namespace caseledger::notify

#include <algorithm>

#include "projections/src/read_models_impl.h"

namespace caseledger::projections::internal {

template <typename Visit>
Status ReadModelsImpl::ScanTag(IndexTag tag, Visit visit,
                               const std::string& from) const {
  std::string prefix(1, static_cast<char>(tag));
  prefix.push_back('\0');
  prefix += from;
  std::string upper(1, static_cast<char>(tag));
  upper.push_back('\x01');
  rocksdb::Slice upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_s;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    auto [value, id] = SplitIndexKey(it->key().ToString());
    if (!visit(value, id)) break;
  }
  return FromRocks(it->status(), "scanning governance index");
}

StatusOr<GovernanceView> ReadModelsImpl::Governance(const std::string& view,
                                                    Timestamp now,
                                                    size_t limit) const {
  GovernanceView out{view, now, {}};
  RETURN_IF_ERROR(VisitView(view, now, [&](GovernanceItem item) {
    out.items.push_back(std::move(item));
    return out.items.size() < limit;
  }));
  return out;
}

Status ReadModelsImpl::VisitView(
    const std::string& view, Timestamp now,
    const std::function<bool(GovernanceItem)>& visit) const {
  const std::string now_ts = FormatTimestamp(now);
  const std::string today = now_ts.substr(0, 10);
  // Each view is one index tag. Values are "due|item" (sorted by due),
  // or for the tags without a due time: the override id; "type|event id";
  // "due|acknowledged at".
  enum class Due { kNone, kTime, kDate };
  struct View {
    IndexTag tag;
    bool due_filter;   // only items due before now (the index is sorted)
    Due due;           // what the part before '|' is
    const char* item;  // the name of the part after '|'
  };
  static const std::map<std::string, View> kViews = {
      {"overdue-acknowledgements", {IndexTag::kAckDue, true, Due::kTime, ""}},
      {"overdue-reviews",
       {IndexTag::kReviewDue, true, Due::kDate, "review_id"}},
      {"escalations-awaiting-acknowledgement",
       {IndexTag::kEscalationDue, false, Due::kTime, "escalation_id"}},
      {"consent-overrides", {IndexTag::kOverride, false, Due::kNone, ""}},
      {"closed-without-outcome-review",
       {IndexTag::kClosedWithoutReview, false, Due::kNone, ""}},
      {"overdue-actions",
       {IndexTag::kActionDue, true, Due::kDate, "action_id"}},
      {"reaudits-due",
       {IndexTag::kReauditDue, false, Due::kDate, "reaudit_id"}},
      {"decisions-without-rationale",
       {IndexTag::kUnexplained, false, Due::kNone, "event_id"}},
      {"late-acknowledgements",
       {IndexTag::kAckLate, false, Due::kTime, "acknowledged_at"}},
      {"erasure-requests",
       {IndexTag::kErasureRequested, false, Due::kNone, "erasure_id"}},
      {"legal-holds", {IndexTag::kLegalHold, false, Due::kNone, ""}},
      {"personal-data-erased", {IndexTag::kErased, false, Due::kNone, "scope"}},
  };
  auto v = kViews.find(view);
  if (v == kViews.end()) return Status::NotFound("no governance view " + view);
  const View& spec = v->second;
  ReaderLock lk(&gen_mu_);
  RETURN_IF_ERROR(ScanTag(spec.tag, [&](const std::string& value,
                                        const std::string& id) {
    std::string head = value, item;
    if (size_t bar = value.rfind('|'); bar != std::string::npos && *spec.item) {
      head = value.substr(0, bar);
      item = value.substr(bar + 1);
    } else if (*spec.item) {  // the value is the item
      head.clear();
      item = value;
    }
    const std::string& now_value = spec.due == Due::kDate ? today : now_ts;
    if (spec.due_filter && !(head < now_value)) return false;  // sorted
    GovernanceItem g;
    g.case_id = id;
    if (*spec.item) {
      g.item_name = spec.item;
      g.item = item;
    }
    if (spec.tag == IndexTag::kOverride) g.override_id = value;
    if (spec.tag == IndexTag::kUnexplained) g.event_type = head;
    if (spec.tag == IndexTag::kAckLate) {
      g.due = head;
    } else if (spec.due != Due::kNone) {
      g.due = head;
      g.overdue = head < now_value;
    }
    return visit(std::move(g));
  }));
  return Status::OK();
}

Status ReadModelsImpl::ReadOverviewCounters(Counters* out) const {
  const std::string prefix(kOverviewCounterPrefix);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), stats_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    const std::string_view key = it->key().ToStringView();
    if (key.size() < prefix.size() + 2) continue;
    const uint64_t n = FromBe64(it->value().ToString());
    if (n == 0) continue;
    (*out)[static_cast<IndexTag>(key[prefix.size()])].emplace_back(
        std::string(key.substr(prefix.size() + 2)), n);
  }
  return FromRocks(it->status(), "reading the overview's counters");
}

StatusOr<uint64_t> ReadModelsImpl::CountBefore(const Counters& counters,
                                               IndexTag tag,
                                               const std::string& bound) const {
  const std::string day = bound.substr(0, kDayBytes);
  uint64_t n = 0;
  if (auto c = counters.find(tag); c != counters.end()) {
    for (const auto& [bucket, count] : c->second) {
      if (!(bucket < day)) break;
      n += count;
    }
  }
  if (bound.size() <= day.size()) return n;  // none of that day sorts before
  std::string prefix(1, static_cast<char>(tag));
  prefix.push_back('\0');
  prefix += day;
  rocksdb::ReadOptions ro;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    auto [value, id] = SplitIndexKey(it->key().ToString());
    if (!(value.substr(0, value.find('|')) < bound)) break;  // sorted
    ++n;
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning governance index"));
  return n;
}

StatusOr<GovernanceOverview> ReadModelsImpl::Overview(Timestamp now) const {
  const std::string now_ts = FormatTimestamp(now);
  const std::string today = now_ts.substr(0, kDayBytes);
  Counters counters;
  ReaderLock lk(&gen_mu_);
  RETURN_IF_ERROR(ReadOverviewCounters(&counters));
  auto of = [&](IndexTag tag)
      -> const std::vector<std::pair<std::string, uint64_t>>& {
    static const std::vector<std::pair<std::string, uint64_t>> kNone;
    auto c = counters.find(tag);
    return c == counters.end() ? kNone : c->second;
  };
  auto total = [&](IndexTag tag) {
    uint64_t n = 0;
    for (const auto& [bucket, count] : of(tag)) n += count;
    return n;
  };
  GovernanceOverview out;
  out.as_of = now;
  for (const auto& [tag, counts] :
       std::vector<std::pair<IndexTag, GovernanceOverview::Counts*>>{
           {IndexTag::kStage, &out.cases_by_stage},
           {IndexTag::kMonth, &out.cases_reported_by_month},
           {IndexTag::kCategory, &out.cases_by_category},
           {IndexTag::kSetting, &out.cases_by_setting},
           {IndexTag::kClosureReason, &out.closed_cases_by_reason},
           {IndexTag::kOutcomes, &out.cases_by_outcomes_achieved}}) {
    for (const auto& [bucket, count] : of(tag)) (*counts)[bucket] = count;
  }
  // Time from report to acknowledgement: the median, and how many were
  // acknowledged late (the breaches are a view of their own).
  {
    auto& ack = out.acknowledgement;
    ack.acknowledged = total(IndexTag::kAckMinutes);
    ack.acknowledged_late = total(IndexTag::kAckLate);
    uint64_t seen = 0;
    for (const auto& [minutes, count] :
         of(IndexTag::kAckMinutes)) {  // zero-padded: sorted
      seen += count;
      if (seen > ack.acknowledged / 2) {
        ack.median_minutes = std::stoull(minutes);
        break;
      }
    }
  }
  // The views' sizes, as VisitView would count them.
  ASSIGN_OR_RETURN(uint64_t overdue_acks,
                   CountBefore(counters, IndexTag::kAckDue, now_ts));
  ASSIGN_OR_RETURN(uint64_t overdue_reviews,
                   CountBefore(counters, IndexTag::kReviewDue, today));
  ASSIGN_OR_RETURN(uint64_t overdue_actions,
                   CountBefore(counters, IndexTag::kActionDue, today));
  ASSIGN_OR_RETURN(uint64_t escalations_overdue,
                   CountBefore(counters, IndexTag::kEscalationDue, now_ts));
  ASSIGN_OR_RETURN(uint64_t reaudits_overdue,
                   CountBefore(counters, IndexTag::kReauditDue, today));
  out.views = {
      {"overdue-acknowledgements", {overdue_acks, std::nullopt}},
      {"overdue-reviews", {overdue_reviews, std::nullopt}},
      {"escalations-awaiting-acknowledgement",
       {total(IndexTag::kEscalationDue), escalations_overdue}},
      {"consent-overrides", {total(IndexTag::kOverride), std::nullopt}},
      {"closed-without-outcome-review",
       {total(IndexTag::kClosedWithoutReview), std::nullopt}},
      {"overdue-actions", {overdue_actions, std::nullopt}},
      {"reaudits-due", {total(IndexTag::kReauditDue), reaudits_overdue}},
      {"decisions-without-rationale",
       {total(IndexTag::kUnexplained), std::nullopt}},
      {"late-acknowledgements", {total(IndexTag::kAckLate), std::nullopt}},
      {"erasure-requests", {total(IndexTag::kErasureRequested), std::nullopt}},
      {"legal-holds", {total(IndexTag::kLegalHold), std::nullopt}},
      {"personal-data-erased", {total(IndexTag::kErased), std::nullopt}},
  };
  // Cases not closed, by whole days since the report: under 7, 7 to 30,
  // over 30. Reported at t, days = (now - t) / 1 day, so "under 7" is
  // t > now - 7 days and "over 30" is t <= now - 31 days.
  {
    constexpr int64_t kDay = 86400LL * 1000000;
    auto at_or_before = [&](int64_t days) {
      return CountBefore(
          counters, IndexTag::kOpenSince,
          FormatTimestamp(Timestamp(now.value() - days * kDay + 1)));
    };
    const uint64_t open = total(IndexTag::kOpenSince);
    ASSIGN_OR_RETURN(uint64_t week_or_more, at_or_before(7));
    ASSIGN_OR_RETURN(uint64_t over_30, at_or_before(31));
    out.open_cases_by_age = {open - week_or_more, week_or_more - over_30,
                             over_30};
  }
  return out;
}

StatusOr<std::vector<ReadModels::RetentionItem>> ReadModelsImpl::RetentionDue(
    const std::vector<domain::RetentionRule>& rules, Timestamp now,
    size_t limit) const {
  std::vector<RetentionItem> out;
  domain::DomainConfig config;
  config.retention_rules = rules;
  const std::string tag{static_cast<char>(IndexTag::kRetention), '\0'};
  std::string upper(1, static_cast<char>(IndexTag::kRetention));
  upper.push_back('\x01');
  rocksdb::Slice upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_s;
  ReaderLock lk(&gen_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
  // Entries are kind|closed at: one kind after another, each oldest first.
  // Walk a kind while its closures are due, then skip to the next kind.
  it->Seek(tag);
  while (it->Valid() && out.size() < limit) {
    auto [value, id] = SplitIndexKey(it->key().ToString());
    const size_t bar = value.find('|');
    const std::string kind = value.substr(0, bar);
    const domain::RetentionRule* rule = domain::RetentionRuleFor(config, kind);
    bool due = false;
    if (rule != nullptr && bar != std::string::npos) {
      auto closed = ParseTimestamp(value.substr(bar + 1));
      due = closed.ok() && !(now < domain::RetentionEndsAt(*rule, *closed));
    }
    if (due) {
      out.push_back({id, rule->name});
      it->Next();
      continue;
    }
    // Nothing later of this kind is due: the next kind ('|' + 1 sorts
    // after every "kind|...").
    it->Seek(tag + kind + static_cast<char>('|' + 1));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning retention index"));
  return out;
}

StatusOr<AuditSample> ReadModelsImpl::AuditSample(
    const std::string& month, size_t size, const std::string& seed) const {
  std::vector<std::string> ids;
  {
    ReaderLock lk(&gen_mu_);
    RETURN_IF_ERROR(ScanTag(
        IndexTag::kMonth,
        [&](const std::string& m, const std::string& id) {
          if (m != month) return false;
          ids.push_back(id);
          return true;
        },
        month));
  }
  // Strata: urgent cases and cases with a consent override are always
  // represented; the rest are drawn in an order fixed by the month and the
  // seed, so the same request gives the same sample.
  std::vector<std::pair<std::string, std::string>> urgent, overridden, rest;
  const std::string prefix = seed + "|" + month + "|";
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(auto doc, Case(id));
    if (!doc) continue;
    std::string rank = Sha256Hex(prefix + id);
    if (!doc->value("overrides", Json::array()).empty()) {
      overridden.emplace_back(std::move(rank), id);
    } else if (doc->value("urgent", false)) {
      urgent.emplace_back(std::move(rank), id);
    } else {
      rest.emplace_back(std::move(rank), id);
    }
  }
  for (auto* v : {&urgent, &overridden, &rest}) std::sort(v->begin(), v->end());
  projections::AuditSample out;
  out.month = month;
  out.seed = seed;
  out.population = ids.size();
  std::vector<projections::AuditSample::Pick>& picked = out.cases;
  auto take = [&](std::vector<std::pair<std::string, std::string>>& from,
                  const char* why, size_t n) {
    for (size_t i = 0; i < from.size() && i < n && picked.size() < size; ++i) {
      picked.push_back({from[i].second, why});
    }
  };
  // At least one of each special stratum (when there is one), then the
  // rest in draw order.
  take(overridden, "consent_override", std::max<size_t>(1, size / 4));
  take(urgent, "urgent", std::max<size_t>(1, size / 4));
  std::vector<std::pair<std::string, std::string>> remaining;
  auto taken = [&](const std::string& id) {
    for (const auto& p : picked)
      if (p.case_id == id) return true;
    return false;
  };
  for (auto* v : {&overridden, &urgent, &rest}) {
    for (const auto& e : *v)
      if (!taken(e.second)) remaining.push_back(e);
  }
  std::sort(remaining.begin(), remaining.end());
  take(remaining, "drawn", size);
  return out;
}

}  // namespace caseledger::projections::internal

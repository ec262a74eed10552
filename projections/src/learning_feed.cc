#include <algorithm>

#include "caseledger/service/case_service.h"
#include "projections/src/json_writer.h"
#include "projections/src/learning_rules.h"
#include "projections/src/read_models_impl.h"

namespace caseledger::projections::internal {

StatusOr<FeedPage> ReadModelsImpl::Feed(uint64_t after_seq, size_t limit,
                                        std::string_view released_before,
                                        std::string_view consumer) const {
  if (key_.empty()) {
    return Status::FailedPrecondition("no pseudonym key is configured");
  }
  FeedPage page;
  page.last_seq = after_seq;
  std::string mark;
  std::unordered_map<std::string, uint64_t> class_sizes;
  ReaderLock lk(&gen_mu_);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), feed_cf_));
  for (it->Seek(Be64(after_seq + 1));
       it->Valid() && page.records.size() < limit; it->Next()) {
    Json r = service::ParseStoredJson(it->value().ToStringView());
    if (r.is_discarded()) return Status::Corruption("feed record");
    const uint64_t seq = FromBe64(it->key().ToString());
    if (!released_before.empty() && r.value("month", "") >= released_before) {
      break;
    }
    const std::string kind = r.value("kind", "");
    if (kind == "case_reported") {
      // k-anonymity, counted when read: a class smaller than k says no
      // more than that a case was reported that month.
      // (Classes repeat within a page: each is read once.)
      const std::string key = ClassKey(r.value("month", ""), r);
      auto size = class_sizes.find(key);
      if (size == class_sizes.end()) {
        std::string n;
        rocksdb::Status gs =
            db_->Get(rocksdb::ReadOptions(), stats_cf_, key, &n);
        if (!gs.ok() && !gs.IsNotFound()) return FromRocks(gs, "reading");
        size = class_sizes.emplace(key, gs.ok() ? FromBe64(n) : 0).first;
      }
      if (size->second < kMinClassSize) {
        for (const char* f :
             {"concern_kind", "setting", "categories", "urgent"}) {
          r[f] = "suppressed";
        }
      }
    } else if (kind == "learning_shared") {
      rocksdb::Status ws =
          db_->Get(rocksdb::ReadOptions(), stats_cf_, WithdrawnKey(seq), &mark);
      if (!ws.ok() && !ws.IsNotFound()) return FromRocks(ws, "reading");
      if (ws.ok()) {
        // Corrected after it was shared: the text is no longer given out.
        for (const char* field : {"what_went_well", "what_must_change"}) {
          r[field] = "[withdrawn]";
        }
        r["withdrawn"] = true;
      } else {
        // Scrubbed again with every identifier the case holds now (the
        // patterns were applied when it was written; the text is fixed).
        ASSIGN_OR_RETURN(Identifiers ids,
                         ReadIdentifiers(stats_cf_, r.value("case", "")));
        Status opened = Status::OK();
        if (!ids.sealed.empty()) {
          opened = opener_ ? opener_(ids.sealed_case, ids.sealed, &ids)
                           : Status::FailedPrecondition(
                                 "no opener for sealed identifiers");
        }
        for (const char* field : {"what_went_well", "what_must_change"}) {
          // Fail closed: text that cannot be checked is not given out.
          r[field] = opened.ok() ? RedactIdentifiers(r.value(field, ""), ids)
                                 : "[withheld]";
        }
      }
    }
    if (!consumer.empty()) {
      r["case"] = ConsumerPseudonym(*hmac_, consumer, r.value("case", ""));
    }
    page.last_seq = seq;
    page.records.push_back(std::move(r));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "reading the feed"));
  return page;
}

StatusOr<LearningSummary> ReadModelsImpl::Summary(
    const SummaryOptions& o) const {
  LearningSummary out;
  out.suppress_below = o.suppress_below;
  out.rounded_to = o.round_to;
  out.released_before = o.released_before;
  // Keys: group \0 month [\0 code]; counts of released months summed.
  std::map<std::pair<std::string, std::string>, uint64_t> sums;
  // (Only these groups' keys: the column family also holds per-case
  // identifiers and k-anonymity classes.)
  ReaderLock lk(&gen_mu_);
  for (const std::string group : {"category", "setting", "month"}) {
    const std::string prefix = group + '\0';
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), stats_cf_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      const std::string rest = it->key().ToString().substr(prefix.size());
      const size_t sep = rest.find('\0');
      const std::string month = rest.substr(0, sep);
      const std::string code =
          sep == std::string::npos ? month : rest.substr(sep + 1);
      if (!o.released_before.empty() && month >= o.released_before) continue;
      sums[{"by_" + group, code}] += FromBe64(it->value().ToString());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the summary"));
  }
  // Every code of the vocabularies is listed, and every month from the
  // first to the last, counted or not: a code or month left out would
  // tell a reader "none", where a suppressed one says "fewer than the
  // threshold" (safeguarding.md d: zero is disclosive as well).
  for (const auto& [group, vocabulary] :
       {std::pair{"by_category", "harm_category"},
        std::pair{"by_setting", "setting"}}) {
    for (const std::string& code : catalog_->Vocabulary(vocabulary)) {
      sums.try_emplace({group, code}, 0);
    }
  }
  std::string first_month, last_month;
  for (const auto& [group_code, n] : sums) {
    if (group_code.first != "by_month") continue;
    if (first_month.empty()) first_month = group_code.second;
    last_month = group_code.second;
  }
  for (std::string m = first_month; !m.empty() && m < last_month;) {
    sums.try_emplace({"by_month", m}, 0);
    m = NextMonth(m);
  }
  for (const auto& [group_code, n] : sums) {
    LearningSummary::Counts& counts =
        group_code.first == "by_category"  ? out.by_category
        : group_code.first == "by_setting" ? out.by_setting
                                           : out.by_month;
    counts[group_code.second] = n < o.suppress_below
                                    ? std::nullopt
                                    : std::optional(RoundCount(n, o.round_to));
  }
  return out;
}

StatusOr<Identifiers> ReadModelsImpl::ReadIdentifiers(
    rocksdb::ColumnFamilyHandle* cf, const std::string& pseudonym) const {
  Identifiers ids;
  std::string value;
  rocksdb::Status gs =
      db_->Get(rocksdb::ReadOptions(), cf, IdentifiersKey(pseudonym), &value);
  if (gs.IsNotFound()) return ids;
  RETURN_IF_ERROR(FromRocks(gs, "reading a case's identifiers"));
  return IdentifiersFromText(value);
}

StatusOr<Identifiers> ReadModelsImpl::IdentifiersFromText(
    const std::string& text) {
  Identifiers ids;
  Json j = service::ParseStoredJson(text);
  if (!j.is_object()) return Status::Corruption("identifiers of a case");
  for (const auto& n : j.value("names", Json::array())) ids.names.insert(n);
  for (const auto& x : j.value("exact", Json::array())) ids.exact.insert(x);
  for (const auto& x : j.value("sealed", Json::array())) ids.sealed.insert(x);
  ids.sealed_case = j.value("sealed_case", "");
  return ids;
}

StatusOr<Identifiers> ReadModelsImpl::CommittedIdentifiers(
    rocksdb::ColumnFamilyHandle* cf, const std::string& pseudonym) {
  if (auto it = committed_.ids.find(pseudonym); it != committed_.ids.end()) {
    return it->second;
  }
  if (auto it = committed_.texts.find(IdentifiersKey(pseudonym));
      it != committed_.texts.end()) {
    return IdentifiersFromText(
        std::string(committed_.texts_chunk.ValueOf(it->second)));
  }
  if (!MayHaveWritten(IdentifiersKey(pseudonym))) return Identifiers{};
  RETURN_IF_ERROR(DrainWrites());
  return ReadIdentifiers(cf, pseudonym);
}

Status ReadModelsImpl::AddIdentifiers(
    rocksdb::ColumnFamilyHandle* cf, const std::string& case_id,
    const std::string& pseudonym, bool is_new, const Identifiers& added,
    std::map<std::string, std::string>* writes,
    std::map<std::string, Identifiers>* written) {
  Identifiers ids;
  if (!is_new) {
    ASSIGN_OR_RETURN(ids, CommittedIdentifiers(cf, pseudonym));
  }
  const size_t before = ids.names.size() + ids.exact.size() + ids.sealed.size();
  ids.names.insert(added.names.begin(), added.names.end());
  ids.exact.insert(added.exact.begin(), added.exact.end());
  ids.sealed.insert(added.sealed.begin(), added.sealed.end());
  // (Sealed values open only with their case's id: the feed knows a case
  // by its pseudonym alone.)
  if (!ids.sealed.empty()) ids.sealed_case = case_id;
  if (ids.names.size() + ids.exact.size() + ids.sealed.size() != before) {
    (*writes)[IdentifiersKey(pseudonym)] = IdentifiersText(ids);
  }
  if (written != nullptr) (*written)[pseudonym] = std::move(ids);
  return Status::OK();
}

const std::string& ReadModelsImpl::CasePseudonym(const std::string& case_id) {
  auto it = pseudonyms_.find(case_id);
  if (it != pseudonyms_.end()) return it->second;
  if (pseudonyms_.size() >= kStateCacheEntries) pseudonyms_.clear();
  return pseudonyms_.emplace(case_id, Pseudonym(*hmac_, case_id)).first->second;
}

Status ReadModelsImpl::FeedRecords(
    const RecordedEvent& e, const FeedInput& input,
    rocksdb::ColumnFamilyHandle* stats_cf,
    std::unordered_map<std::string, uint64_t>* stats,
    const std::function<uint64_t(std::vector<Member>)>& emit) {
  const std::string_view type = e.type;  // compared by length first
  const FeedDetail& in = input.Detail();
  // A record's common fields. Built only for an event that yields a
  // record (a quarter of them): most events yield none.
  const std::string* pseudonym = nullptr;
  std::string month;
  auto base = [&](std::string_view kind) {
    if (pseudonym == nullptr) {
      pseudonym = &CasePseudonym(e.stream_id);
      month = MonthOf(e.recorded_at);
    }
    return std::vector<Member>{Member::Str("case", *pseudonym),
                               Member::Str("month", month),
                               Member::Str("kind", kind)};
  };
  auto load = [&](const std::string& k) {
    return LoadCounter(stats_cf, stats, k);
  };
  auto bump = [&](const std::string& k, int delta = 1) {
    return BumpCounter(stats_cf, stats, k, delta);
  };
  // Counts are kept per month reported, so a summary can sum released
  // months only.
  auto bump_report = [&](int delta) -> Status {
    const std::string reported = MonthOf(in.reported_at);
    for (const auto& c : in.categories) {
      RETURN_IF_ERROR(bump(std::string("category")
                               .append(1, '\0')
                               .append(reported)
                               .append(1, '\0')
                               .append(c),
                           delta));
    }
    RETURN_IF_ERROR(bump(
        std::string("setting") + '\0' + reported + '\0' + in.setting, delta));
    RETURN_IF_ERROR(bump(ClassKey(reported, in), delta));
    return bump(std::string("month") + '\0' + reported, delta);
  };
  if (input.out) {
    // Out of the feed from now on; consumers are told to drop what they
    // hold of the case, and it leaves the counts.
    if (!input.was_out) {
      emit(base("case_withdrawn"));
      RETURN_IF_ERROR(bump_report(-1));
    }
    return Status::OK();
  }
  if (type == "ConcernReported") {
    std::vector<Member> r = base("case_reported");
    AddReportedFields(in, &r);
    emit(std::move(r));
    RETURN_IF_ERROR(bump_report(1));
  } else if (type == "ReviewCompleted" && in.review_kind == "with_person") {
    std::vector<Member> r = base("outcomes_reviewed");
    r.push_back(Member::Str("outcomes_achieved", in.outcomes_achieved));
    r.push_back(Member::Str("feels_safer", in.feels_safer));
    emit(std::move(r));
  } else if (type == "CaseClosed") {
    std::vector<Member> r = base("case_closed");
    r.push_back(Member::Str("reason", in.reason));
    r.push_back(Member::Flag("outcome_review", in.outcome_review));
    emit(std::move(r));
  } else if (type == "LearningScreened" &&
             in.decision == "approved_for_sharing") {
    // The learning text as the service released it on approval (scrubbed
    // then of every identifier the case held; before v2 of the event, as
    // recorded and corrected), scrubbed again of every identifier the case
    // holds: those of earlier batches, kept under its pseudonym, and this
    // batch's.
    if (!in.learning.is_object()) return Status::OK();
    const Json& learning = in.learning;
    const std::string& learning_event_id = in.learning_event_id;
    ASSIGN_OR_RETURN(
        Identifiers ids,
        CommittedIdentifiers(stats_cf, CasePseudonym(e.stream_id)));
    ids.names.insert(in.batch_ids.names.begin(), in.batch_ids.names.end());
    ids.exact.insert(in.batch_ids.exact.begin(), in.batch_ids.exact.end());
    const std::string went_well =
        Scrub(learning.value("what_went_well", ""), ids);
    const std::string must_change =
        Scrub(learning.value("what_must_change", ""), ids);
    const Json themes = learning.value("themes", Json::array());
    const Json settings = learning.value("settings", Json::array());
    const Json share_in = learning.value("share_in", Json::array());
    std::vector<Member> r = base("learning_shared");
    r.push_back(Member::Str("what_went_well", went_well));
    r.push_back(Member::Str("what_must_change", must_change));
    r.push_back(Member::Any("themes", themes));
    r.push_back(Member::Any("settings", settings));
    r.push_back(Member::Any("share_in", share_in));
    const uint64_t shared_seq = emit(std::move(r));
    // Approved again while shared already: both records carry the text,
    // so a later correction must withdraw both. Each links to the one
    // before it.
    ASSIGN_OR_RETURN(uint64_t * shared, load(SharedKey(learning_event_id)));
    // (A record's sequence number is new, so its entries are too: set,
    // not read.)
    (*stats)[PreviousKey(shared_seq)] = *shared;
    *shared = shared_seq;
  } else if (type == "EventAmended" &&
             in.amends_event_type == "LearningRecorded") {
    // Learning corrected after it was shared: what consumers hold may be
    // just what the correction took out. The shared text is withdrawn
    // (its record reads "[withdrawn]" from now on, and a
    // learning_withdrawn record tells consumers to drop their copy); the
    // corrected text is shared only once a reviewer approves it again.
    ASSIGN_OR_RETURN(uint64_t * shared, load(SharedKey(in.amends_event_id)));
    for (uint64_t seq = *shared; seq != 0;) {
      (*stats)[WithdrawnKey(seq)] = 1;
      std::vector<Member> r = base("learning_withdrawn");
      r.push_back(Member::Num("of_seq", seq));
      emit(std::move(r));
      ASSIGN_OR_RETURN(uint64_t * previous, load(PreviousKey(seq)));
      seq = *previous;
    }
    *shared = 0;
  }
  return Status::OK();
}

}  // namespace caseledger::projections::internal

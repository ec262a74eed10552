#include "caseledger/service/case_service.h"
#include "projections/src/read_models_impl.h"

namespace caseledger::projections {
namespace internal {

StatusOr<std::optional<Json>> ReadModelsImpl::Case(
    const std::string& case_id) const {
  ReaderLock lk(&gen_mu_);
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), state_cf_, case_id, &value);
  if (s.IsNotFound()) return std::optional<Json>();
  RETURN_IF_ERROR(FromRocks(s, "reading case " + case_id));
  Json doc = service::ParseStoredJson(value);
  if (doc.is_discarded()) return Status::Corruption("case document " + case_id);
  return std::optional<Json>(std::move(doc));
}

StatusOr<CasePage> ReadModelsImpl::ListCases(const CaseFilter& f,
                                             const std::string& cursor,
                                             size_t limit) const {
  // The most selective index the filter offers.
  std::string prefix =
      f.stage      ? IndexPrefix(IndexTag::kStage, *f.stage)
      : f.lead     ? IndexPrefix(IndexTag::kLead, *f.lead)
      : f.category ? IndexPrefix(IndexTag::kCategory, *f.category)
      : f.reporter ? IndexPrefix(IndexTag::kReporter, *f.reporter)
      : f.urgency  ? IndexPrefix(IndexTag::kUrgency, *f.urgency)
                   : IndexPrefix(IndexTag::kAll, "");
  std::string upper = prefix;
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_s(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_s;
  ReaderLock lk(&gen_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
  CasePage page;
  std::string value;
  for (it->Seek(prefix + cursor); it->Valid(); it->Next()) {
    std::string id = it->key().ToString().substr(prefix.size());
    if (!cursor.empty() && id == cursor) continue;
    if (page.cases.size() == limit) {
      page.next_cursor = page.cases.back().value("case_id", "");
      break;
    }
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), state_cf_, id, &value);
    RETURN_IF_ERROR(FromRocks(s, "reading case " + id));
    Json doc = service::ParseStoredJson(value);
    if (doc.is_discarded()) return Status::Corruption("case document " + id);
    if (Matches(f, doc)) page.cases.push_back(std::move(doc));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "listing cases"));
  return page;
}

StatusOr<std::vector<std::pair<std::string, std::string>>>
ReadModelsImpl::Dump() const {
  std::vector<std::pair<std::string, std::string>> out;
  ReaderLock lk(&gen_mu_);
  for (auto* cf : {state_cf_, index_cf_, feed_cf_, stats_cf_}) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      // An overview counter at 0 is the same as none (which of the two a
      // case's coming and going leaves depends on how batches fell).
      if (cf == stats_cf_ && it->key().starts_with(kOverviewCounterPrefix) &&
          FromBe64(it->value().ToString()) == 0) {
        continue;
      }
      out.emplace_back(it->key().ToString(), it->value().ToString());
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "dumping"));
  }
  std::string cp;
  if (db_->Get(rocksdb::ReadOptions(), CheckpointKey(generation_), &cp).ok()) {
    out.emplace_back("checkpoint", std::to_string(FromBe64(cp)));
  }
  if (db_->Get(rocksdb::ReadOptions(), FeedSeqKey(generation_), &cp).ok()) {
    out.emplace_back("feed_seq", std::to_string(FromBe64(cp)));
  }
  return out;
}

bool ReadModelsImpl::Matches(const CaseFilter& f, const Json& doc) {
  if (f.stage && doc.value("stage", "") != *f.stage) return false;
  if (f.lead && doc.value("lead_actor_id", "") != *f.lead) return false;
  if (f.reporter && doc.value("reporter_actor_id", "") != *f.reporter)
    return false;
  if (f.urgency &&
      (doc.value("urgent", false) ? "urgent" : "standard") != *f.urgency) {
    return false;
  }
  if (f.category) {
    bool has = false;
    for (const auto& c : doc.value("categories", Json::array()))
      has |= c == *f.category;
    if (!has) return false;
  }
  if (f.ack_overdue) {
    if (doc.contains("acknowledged_at")) return false;
    auto due = ParseTimestamp(doc.value("acknowledgement_due_at", ""));
    if (!due.ok() || !(*due < f.now)) return false;
  }
  if (f.reader && BarredFrom(doc, *f.reader)) return false;
  return true;
}

}  // namespace internal

bool BarredFrom(const nlohmann::json& doc, const domain::Actor& actor) {
  for (const auto& id :
       doc.value("barred_actor_ids", nlohmann::json::array())) {
    if (id == actor.id) return true;
  }
  return doc.value("all_dsls_barred", false) &&
         actor.role == domain::Role::kDsl;
}

}  // namespace caseledger::projections

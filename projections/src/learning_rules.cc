#include "projections/src/learning_rules.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace caseledger::projections::internal {

using Json = nlohmann::json;

// "YYYY-MM" -> the month after it; "" if `month` is not of that form.
std::string NextMonth(const std::string& month) {
  int y = 0, m = 0;
  if (month.size() != 7 || std::sscanf(month.c_str(), "%4d-%2d", &y, &m) != 2 ||
      m < 1 || m > 12) {
    return "";
  }
  if (++m == 13) {
    m = 1;
    ++y;
  }
  char out[32];
  std::snprintf(out, sizeof(out), "%04d-%02d", y, m);
  return out;
}

// The counter of a case_reported record's equivalence class.
std::string ClassKey(const std::string& month, const std::string& kind,
                     const std::string& setting,
                     std::vector<std::string> categories, bool urgent) {
  std::sort(categories.begin(), categories.end());
  std::string key =
      std::string("class") + '\0' + month + '\0' + kind + '|' + setting + '|';
  for (const auto& c : categories) key += c + ',';
  key += urgent ? "|urgent" : "|standard";
  return key;
}
// The same, from a stored record's fields.
std::string ClassKey(const std::string& month, const Json& fields) {
  std::vector<std::string> categories;
  for (const auto& c : fields.value("categories", Json::array())) {
    if (c.is_string()) categories.push_back(c.get<std::string>());
  }
  return ClassKey(month, fields.value("concern_kind", ""),
                  fields.value("setting", ""), std::move(categories),
                  fields.value("urgent", false));
}

// Whether anyone in the case has refused or withdrawn consent to its use in
// anonymised learning (safeguarding.md d.2 rule 1). Once so, the case stays
// out of the feed, even if consent is given again later.
bool OptedOutOfLearning(const domain::CaseState& state) {
  for (const auto& c : state.consents) {
    if (c.purpose == "use_in_anonymised_learning" &&
        (c.decision == "refused" || c.decision == "withdrawn")) {
      return true;
    }
  }
  return false;
}

uint64_t RoundCount(uint64_t n, uint64_t to) {
  return to == 0 ? n : ((n + to / 2) / to) * to;
}

void AddReportedFields(const FeedDetail& in, std::vector<Member>* r) {
  r->push_back(Member::Str("concern_kind", in.kind));
  r->push_back(Member::Str("setting", in.setting));
  r->push_back(Member::Strs("categories", in.categories));
  r->push_back(Member::Flag("urgent", in.urgent));
}
std::string ClassKey(const std::string& month, const FeedDetail& in) {
  return ClassKey(month, in.kind, in.setting, in.categories, in.urgent);
}

}  // namespace caseledger::projections::internal

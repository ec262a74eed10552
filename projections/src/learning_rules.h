// What the learning feed says of a case, and when: months, equivalence
// classes (k-anonymity), opting out, rounding. Internal to projections.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/types.h"
#include "projections/src/anonymise.h"
#include "projections/src/fold.h"
#include "projections/src/json_writer.h"

namespace caseledger::projections::internal {

// "YYYY-MM" -> the month after it; "" if `month` is not of that form.
std::string NextMonth(const std::string& month);

// A record-level feed follows k-anonymity (safeguarding.md d.2 rule 5): a
// case_reported record says what kind of case it was (kind, setting,
// categories, urgency) only when at least this many cases reported in the
// same month say the same; otherwise those fields read "suppressed".
inline constexpr uint64_t kMinClassSize = 5;

// The counter of a case_reported record's equivalence class.
std::string ClassKey(const std::string& month, const std::string& kind,
                     const std::string& setting,
                     std::vector<std::string> categories, bool urgent);
// The same, from a stored record's fields.
std::string ClassKey(const std::string& month, const nlohmann::json& fields);
// The same, from what the feed took of the reporting event.
std::string ClassKey(const std::string& month, const FeedDetail& in);

// A case_reported record's fields (what it says of the case besides its
// pseudonym and month).
void AddReportedFields(const FeedDetail& in, std::vector<Member>* r);

// Whether anyone in the case has refused or withdrawn consent to its use in
// anonymised learning (safeguarding.md d.2 rule 1). Once so, the case stays
// out of the feed, even if consent is given again later.
bool OptedOutOfLearning(const domain::CaseState& state);

// `n` rounded to the nearest multiple of `to` (0: not rounded).
uint64_t RoundCount(uint64_t n, uint64_t to);

}  // namespace caseledger::projections::internal

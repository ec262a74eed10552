// A case's read-model document and its index entries, made straight from
// its folded state. Internal to projections (read_models.cc uses it; tests
// check it against the slower way through nlohmann's document).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/case.h"

namespace caseledger::projections::internal {

// The start of an index entry's key: tag \0 value \0 (tag \0 for 'a').
// Tags: a (every case), s (stage), u (urgency), r (reporter), l (lead),
// c (category), m (month reported), k (acknowledgement due), v (review due),
// e (escalation awaiting acknowledgement), o (consent override), w (closed
// without an outcome review), g (setting), z (closure reason), y (outcomes
// achieved), h (minutes to acknowledgement), b (acknowledged late),
// x (re-audit due), n (decision without its rationale), t (action due).
std::string IndexPrefix(char tag, const std::string& value);

// The case's document: domain::ToJson(id, state) with "last_position" added,
// as nlohmann's dump() writes it (keys in order, the same escapes), byte for
// byte, written without building the document.
std::string CaseDocument(const std::string& case_id,
                         const domain::CaseState& state,
                         uint64_t last_position);

// Index keys, sorted, each once, in one buffer (a rebuild makes a set for
// every case it folds: a string each was a dozen allocations a case, to
// make and to free).
class IndexKeySet {
 public:
  size_t size() const { return ends_.size(); }
  std::string_view operator[](size_t i) const {
    const uint32_t from = i == 0 ? 0 : ends_[i - 1];
    return std::string_view(bytes_).substr(from, ends_[i] - from);
  }
  std::vector<std::string> ToVector() const;

 private:
  friend IndexKeySet IndexKeys(const std::string&, const domain::CaseState&);
  std::string bytes_;           // the keys, one after another
  std::vector<uint32_t> ends_;  // where each ends in bytes_
};

// The index entries of a case (tag \0 value \0 case id), sorted, each
// once.
IndexKeySet IndexKeys(const std::string& case_id,
                      const domain::CaseState& state);

}  // namespace caseledger::projections::internal

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
#include "projections/src/layout.h"

namespace caseledger::projections::internal {

// The start of an index entry's key: tag \0 value \0 (tag \0 for
// IndexTag::kAll).
std::string IndexPrefix(IndexTag tag, const std::string& value);

// The governance overview's counters, kept in the stats column family
// beside the index they count, so the overview costs what the number of
// distinct values costs, not the number of cases. One counter per index
// entry's tag and bucket: "ov" \0 tag \0 bucket -> big-endian count of
// entries. The bucket is the value itself for s, m, c, g, z, y and h; the
// first kDayBytes of the due or reported time (the part before '|') for k,
// e, p, v, t and x, so "how many are due before T" is the sum of the days
// before T's day plus a scan of T's day alone; empty (a count of the tag)
// for o, w, n and b. Other tags are not counted.
inline constexpr std::string_view kOverviewCounterPrefix{"ov\0", 3};
inline constexpr size_t kDayBytes = 10;  // "YYYY-MM-DD"

// Sets `counter` to the key of the counter an index entry adds 1 to (and
// returns true), or returns false for an entry of a tag not counted.
bool OverviewCounterKey(std::string_view index_key, std::string* counter);

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

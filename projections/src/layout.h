// The read models' storage layout, shared by the files of projections/src:
// the column families of a generation, the keys of the default column
// family, the sizes that bound memory, and the codings of keys and values.
// projections/FORMAT.md describes every key and value. Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "caseledger/status.h"
#include "caseledger/storage.h"

namespace caseledger::projections::internal {

// default CF: "generation" -> decimal N; "checkpoint:<N>" -> be64 position.
inline constexpr char kGenerationKey[] = "generation";
// The shape of the read models (documents, index tags, feed records). A
// store built under another shape is rebuilt from the log when opened.
inline constexpr char kShapeKey[] = "shape";
// 3: feed safeguards, bars from amendments; 4: shared learning withdrawn
// when corrected; 5: the overview's counters and the 'p' index tag; 6:
// erasure, legal hold and retention (documents and tags q, j, d, f).
inline constexpr char kShape[] = "6";
// Recently applied cases kept folded in memory (a few KiB each): enough for
// the cases in flight at once, bounded for stores of any size.
inline constexpr size_t kStateCacheEntries = 10000;
inline constexpr size_t kMemtableBudget = 64u << 20;
inline constexpr size_t kBlockCacheBytes = 32u << 20;
inline constexpr size_t kBatch = 1000;
// Counters of the learning statistics kept in memory (a few dozen bytes
// each).
inline constexpr size_t kCommittedEntries = 100000;

inline std::string StateCf(uint64_t gen) {
  return "case_state_g" + std::to_string(gen);
}
inline std::string IndexCf(uint64_t gen) {
  return "case_index_g" + std::to_string(gen);
}
inline std::string FeedCf(uint64_t gen) {
  return "learning_feed_g" + std::to_string(gen);
}
inline std::string StatsCf(uint64_t gen) {
  return "learning_stats_g" + std::to_string(gen);
}
inline std::string CheckpointKey(uint64_t gen) {
  return "checkpoint:" + std::to_string(gen);
}
inline std::string FeedSeqKey(uint64_t gen) {
  return "feed_seq:" + std::to_string(gen);
}
inline std::vector<std::string> GenerationCfs(uint64_t gen) {
  return {StateCf(gen), IndexCf(gen), FeedCf(gen), StatsCf(gen)};
}

// The case index's tags: an index key is tag \0 value \0 case id (the
// tag kAll: tag \0 case id). The letters are stored: never change one.
// FORMAT.md lists what each holds.
enum class IndexTag : char {
  kAll = 'a',                  // every case
  kStage = 's',                // stage name
  kUrgency = 'u',              // urgent, standard
  kReporter = 'r',             // reporter's actor id
  kLead = 'l',                 // lead's actor id
  kCategory = 'c',             // each harm category
  kMonth = 'm',                // month reported
  kOpenSince = 'p',            // not closed: reported at
  kAckDue = 'k',               // acknowledgement due, until taken
  kReviewDue = 'v',            // review due|review id
  kEscalationDue = 'e',        // escalation acknowledgement due|id
  kOverride = 'o',             // consent override id
  kClosedWithoutReview = 'w',  // closed without an outcome review
  kSetting = 'g',              // setting
  kClosureReason = 'z',        // closure reason
  kOutcomes = 'y',             // outcomes achieved
  kAckMinutes = 'h',           // minutes to acknowledgement, zero-padded
  kAckLate = 'b',              // acknowledged late: due|acknowledged at
  kReauditDue = 'x',           // re-audit due|re-audit id
  kUnexplained = 'n',          // decision without rationale: type|event id
  kActionDue = 't',            // action due|action id
  kErasureRequested = 'q',     // each erasure request pending: erasure id
  kLegalHold = 'j',            // on legal hold
  kErased = 'd',               // erased: "*" (the case) or person:<ref>
  kRetention = 'f',            // closed, not held or erased: kind|closed at
};

// tag \0 value \0 case id -> (value, case id).
inline std::pair<std::string, std::string> SplitIndexKey(
    const std::string& key) {
  size_t first = key.find('\0');
  size_t last = key.rfind('\0');
  if (first == std::string::npos || last == first) return {"", ""};
  return {key.substr(first + 1, last - first - 1), key.substr(last + 1)};
}

}  // namespace caseledger::projections::internal

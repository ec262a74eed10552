// Folding, the first of a batch's two stages (see below). Internal to
// projections.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "caseledger/domain/case.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "projections/src/anonymise.h"
#include "projections/src/case_document.h"

namespace caseledger::projections::internal {

using Json = nlohmann::json;

// --- Folding: the first of a batch's two stages -----------------------------
//
// A batch is applied in two stages. Folding evolves each case's state
// through the batch's events and prepares what the second stage writes:
// each touched case's document and index keys, and what the learning feed
// reads of each event. It reads only the log (immutable), never the read
// models, so a rebuild runs it on a thread of its own ahead of the second
// stage (ReadModelsImpl::Apply), which reads and writes the read models in
// log order on one thread.

// What the learning feed reads of one case event besides whether the case
// is out of learning (FeedInput), by event type: most events need nothing
// of it.
struct FeedDetail {
  // The case's reported fields after the event, kept when the feed counts
  // the report (the event reports the case, or takes it out of learning).
  bool has_report = false;
  Timestamp reported_at;
  std::string kind;
  std::string setting;
  std::vector<std::string> categories;
  bool urgent = false;
  // What the feed reads of the payload, by event type (a member absent or
  // not a string reads as ""): ReviewCompleted's kind, outcomes achieved
  // and whether the person feels safer; CaseClosed's reason and whether
  // it names an outcome review; LearningScreened's decision;
  // EventAmended's amended event and its type.
  std::string review_kind;
  std::string outcomes_achieved;
  std::string feels_safer;
  std::string reason;
  bool outcome_review = false;
  std::string decision;
  std::string amends_event_type;
  std::string amends_event_id;
  // Approved learning: the text as recorded, with the corrections made
  // before the screening (null: none found); the id of its LearningRecorded
  // event; and the identifiers this batch's events of the case held up to
  // and including the screening.
  Json learning;
  std::string learning_event_id;
  Identifiers batch_ids;
};

// What the learning feed reads of one case event, taken when the event is
// folded (so the applying stage needs neither the case's state nor the log).
// Small: a batch holds one per event, and most events need no detail, so
// the detail is allocated only for those that do.
struct FeedInput {
  bool was_out = false;  // the case was out of learning before the event
  bool out = false;      // and is after it
  std::unique_ptr<FeedDetail> detail;  // null: none

  const FeedDetail& Detail() const {
    static const FeedDetail kNone;
    return detail ? *detail : kNone;
  }
  FeedDetail& MakeDetail() {
    if (!detail) detail = std::make_unique<FeedDetail>();
    return *detail;
  }
};

// One case as a batch leaves it.
struct FoldedCase {
  uint64_t first_version = 0;  // of its first event in the batch
  uint64_t version = 0;        // after the batch
  uint64_t last_position = 0;  // of its last event in the batch
  std::string doc;             // its document (JSON) after the batch
  // The document's index keys, sorted; and those it had before the batch
  // (of its state before the batch's first event of it: what the read
  // models hold), none for a new case. Shared with the folder, which keeps
  // a case's keys with its state: the keys after one batch are the keys
  // before its next.
  std::shared_ptr<const IndexKeySet> keys;
  std::shared_ptr<const IndexKeySet> keys_before;
  Identifiers ids;  // the identifiers this batch's events hold
};

// A batch of the log, folded. An empty batch: the end of the log.
struct FoldedBatch {
  std::vector<RecordedEvent> events;
  std::vector<FeedInput> feed;  // one per event (case events only); empty
                                // without the feed
  std::map<std::string, FoldedCase> cases;
  // Non-empty: an event could not be folded (why, and where); nothing of
  // the batch may be applied.
  std::string failure;
};

// Folds batches in log order, keeping the states of recently folded cases
// (bounded) so that a case's next batch folds only its new events. One
// thread at a time.
class Folder {
 public:
  Folder(const EventStore& store, const domain::EventCatalog& catalog,
         bool feed)
      : store_(store), catalog_(catalog), feed_(feed) {}

  // Folds `b->events` into `b->feed` and `b->cases`. On a failure, says
  // why in `b->failure` and forgets every kept state.
  //
  // A payload at its type's current schema version (every payload but
  // those written before an upgrade) is folded from simdjson's parse of its
  // text, without building a document (the same state: see
  // domain::Evolve); a document is built only for an older one (to upcast
  // it) and for the few event types the feed keeps the payload of.
  void Fold(FoldedBatch* b);

  void Clear() { cache_.clear(); }

 private:
  // A LearningRecorded event's text, as corrected since.
  struct Learning {
    std::string event_id;
    Json text;
  };
  struct Entry {
    domain::CaseState state;
    // By learning id: the latest LearningRecorded of each (kept only when
    // the feed is on).
    std::map<std::string, Learning> learning;
    // The index keys of `state`, once folded into a batch (null before).
    std::shared_ptr<const IndexKeySet> keys;
  };

  // The case as it stood before `e`, kept: as kept already, new, or folded
  // from the log. (Pointers to kept entries stay valid until the cache is
  // cleared: between batches, or on a failure.)
  StatusOr<Entry*> Before(const RecordedEvent& e);

  // Keeps learning text and its corrections, for the screening that shares
  // it.
  static void Track(Entry* en, const domain::DomainEvent& d);

  const EventStore& store_;
  const domain::EventCatalog& catalog_;
  const bool feed_;
  std::unordered_map<std::string, Entry> cache_;
  simdjson::dom::parser parser_;  // reused: its buffers grow once
  // The store leaves this much room after each payload it reads
  // (engine/src/record.cc), so the parser reads it in place.
  static_assert(simdjson::SIMDJSON_PADDING <= 64);
  domain::EventHeader header_;  // reused: the event folded now
};

}  // namespace caseledger::projections::internal

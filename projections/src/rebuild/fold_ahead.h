// A rebuild's reading and folding stages, on threads of their own.
// Internal.
#pragma once

#include <thread>
#include <vector>

#include "caseledger/event_store.h"
#include "projections/src/fold.h"
#include "projections/src/rebuild/handoff.h"

namespace caseledger::projections::internal {

// Reads the whole log from the start and folds it, a few batches ahead of
// its consumer, on two threads of its own: one reads and decodes each
// batch, the other folds it (with a Folder of its own). Next() hands the
// folded batches over in order; a read error ends the stream with that
// error, a fold failure with a batch that carries the failure. Destroying
// it stops both threads.
class FoldAhead {
 public:
  FoldAhead(const EventStore& store, const domain::EventCatalog& catalog,
            bool feed);
  ~FoldAhead();
  FoldAhead(const FoldAhead&) = delete;
  FoldAhead& operator=(const FoldAhead&) = delete;

  StatusOr<FoldedBatch> Next();

 private:
  static constexpr size_t kAhead = 4;  // batches ahead, at most, per stage

  void Read();

  void Fold();

  const EventStore& store_;
  Folder folder_;  // the fold thread's only
  Handoff<StatusOr<std::vector<RecordedEvent>>> read_{kAhead};
  Handoff<StatusOr<FoldedBatch>> folded_{kAhead};
  std::thread reader_;  // last: they start once the rest exists
  std::thread fold_thread_;
};

}  // namespace caseledger::projections::internal

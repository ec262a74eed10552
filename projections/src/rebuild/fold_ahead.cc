#include "projections/src/rebuild/fold_ahead.h"

#include <utility>

#include "projections/src/layout.h"

namespace caseledger::projections::internal {

FoldAhead::FoldAhead(const EventStore& store,
                     const domain::EventCatalog& catalog, bool feed)
    : store_(store),
      folder_(store, catalog, feed),
      reader_([this] { Read(); }),
      fold_thread_([this] { Fold(); }) {}

FoldAhead::~FoldAhead() {
  read_.Close();
  folded_.Close();
  reader_.join();
  fold_thread_.join();
}

StatusOr<FoldedBatch> FoldAhead::Next() {
  std::optional<StatusOr<FoldedBatch>> b = folded_.Pop();
  if (!b) return Status::Unavailable("the log's reader stopped");
  return std::move(*b);
}

void FoldAhead::Read() {
  uint64_t pos = 0;
  for (;;) {
    auto events = store_.ReadAll(GlobalPosition(pos), kBatch);
    if (!events.ok()) {
      read_.Push(events.status());
      return;
    }
    const bool end = events->empty();
    if (!end) pos = events->back().position.value();
    if (!read_.Push(std::move(*events)) || end) return;
  }
}

void FoldAhead::Fold() {
  for (;;) {
    std::optional<StatusOr<std::vector<RecordedEvent>>> events = read_.Pop();
    if (!events) return;
    if (!events->ok()) {
      folded_.Push(events->status());
      return;
    }
    FoldedBatch b;
    b.events = std::move(**events);
    folder_.Fold(&b);
    const bool end = b.events.empty() || !b.failure.empty();
    if (!folded_.Push(std::move(b)) || end) {
      // The kept states are freed here, while the consumer finishes,
      // rather than by the destructor after it.
      folder_.Clear();
      return;
    }
  }
}

}  // namespace caseledger::projections::internal

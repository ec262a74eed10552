// Options for opening an EventStore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "caseledger/types.h"

namespace spdlog {
class logger;
}

namespace caseledger {

struct Options {
  // Create an empty store when the directory holds none.
  bool create_if_missing = true;

  // Durability contract. With sync = true (the default) an append is
  // acknowledged only after its WriteBatch is in the write-ahead log AND the
  // log has been fsync'ed: a crash of the process or of the machine after an
  // append returned OK loses nothing that it reported. Appends waiting at the
  // same time share one fsync (group commit), so the cost of a sync is spread
  // over every appender that queued while the previous one ran.
  //
  // With sync = false an append is acknowledged once it is in the operating
  // system's page cache: a process crash loses nothing, a machine crash or
  // power loss may lose the most recent acknowledged appends (never part of
  // one: each batch is atomic). Use it only for throwaway stores (tests,
  // seeding a benchmark store that is flushed at close).
  bool sync = true;

  // Open without the writer: appends fail with kFailedPrecondition. Used by
  // the offline tools (verify, dump) so that they never change a store.
  bool read_only = false;

  // A replica's store (a follower's): records arrive only through
  // AppendReplicated, and Append and AppendAsync fail with
  // kFailedPrecondition, so that nothing written on this node can fork its
  // log from the primary's.
  bool replica = false;

  // Group commit bounds: the writer gathers at most this many waiting append
  // calls, or this many payload bytes, into one synced WriteBatch.
  size_t max_group_appends = 1024;
  size_t max_group_bytes = 8u << 20;

  // Per-call bounds; a larger append is rejected with kInvalidArgument.
  size_t max_events_per_append = 1000;
  size_t max_event_bytes = 1u << 20;

  // Block cache shared by all column families, in bytes.
  size_t block_cache_bytes = 64u << 20;
  // The most all memtables together may hold before RocksDB flushes.
  size_t memtable_bytes = 128u << 20;

  // Number of per-case heads (version and hash) the writer keeps in memory.
  // A miss costs one point read.
  size_t stream_cache_entries = 100000;

  // The clock of the whole product: it stamps recorded-at, and every layer
  // above the store takes EventStore::Now() as now (due times, overdue
  // views, the learning feed's release). Null: the system clock. The one
  // place a clock is injected (a simulation gives a SettableClock).
  std::function<Timestamp()> clock;

  // Where the store logs opening, recovery and storage failures. Null: a
  // logger that discards everything.
  std::shared_ptr<spdlog::logger> logger;
};

}  // namespace caseledger

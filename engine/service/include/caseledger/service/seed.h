// The realistic generator behind `caseledger seed`: synthetic case
// lifecycles written through CaseService (the API's command path), from a
// fixed random seed, so the same options always produce the same cases.
// Everything it writes is fictional: "Person A", example.org addresses.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "caseledger/domain/catalog.h"
#include "caseledger/domain/decide.h"
#include "caseledger/event_store.h"
#include "caseledger/keys/sealer.h"

namespace caseledger::service {

struct SeedOptions {
  uint64_t cases = 100;
  uint64_t seed = 20261122;
  // The first case is reported at this time; the simulated clock moves on
  // by minutes to days between steps. Default 2026-01-05T09:00:00Z.
  Timestamp start = Timestamp(1767603600000000);
  // Case ids are "<prefix><number>", numbered from 1.
  std::string case_prefix = "case-";
  // The simulated clock, which the store must have been opened on
  // (Options::clock = clock->Function()): commands are decided and events
  // recorded at simulated times, so a seeded store looks as if its cases
  // happened over weeks, not seconds. Required; left at the last simulated
  // time.
  SettableClock* clock = nullptr;
  // Called after each case with the number done.
  std::function<void(uint64_t)> progress;
};

struct SeedReport {
  uint64_t cases = 0;
  uint64_t commands = 0;
  uint64_t events = 0;
  uint64_t closed = 0;
  uint64_t reopened = 0;
  uint64_t overrides = 0;
  uint64_t withdrawals = 0;
  uint64_t conflicts_of_interest = 0;
  uint64_t escalations = 0;
  uint64_t amendments = 0;
};

// Writes the cases, their personal fields sealed by `sealer` as the API's
// would be. Any rejection by the domain is a bug in the generator and is
// returned as the error (naming the case and command).
StatusOr<SeedReport> SeedCases(
    EventStore& store, std::shared_ptr<const domain::EventCatalog> catalog,
    const domain::DomainConfig& config, const keys::Sealer& sealer,
    const SeedOptions& options);

}  // namespace caseledger::service

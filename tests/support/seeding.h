// Seeding a test's store with service::SeedCases.
#pragma once

#include <memory>
#include <utility>

#include "caseledger/service/seed.h"
#include "tests/support/test_support.h"

namespace caseledger::testing {

// service::SeedCases on a store opened on `clock` (OpenStore's default
// when the test gives none): the clock follows the seed's simulated time
// while it runs, then reads the system clock again.
inline StatusOr<service::SeedReport> SeedCases(
    EventStore& store, std::shared_ptr<const domain::EventCatalog> catalog,
    const keys::Sealer& sealer, service::SeedOptions options,
    SettableClock* clock = &StoreClock()) {
  options.clock = clock;
  auto report = service::SeedCases(store, std::move(catalog),
                                   domain::DomainConfig{}, sealer, options);
  clock->Reset();
  return report;
}

}  // namespace caseledger::testing

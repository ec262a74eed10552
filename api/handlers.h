// The operational routes every deployment has: /healthz, /readyz, /metrics.
#pragma once

#include "api/metrics.h"
#include "api/router.h"
#include "caseledger/event_store.h"
#include "caseledger/projections/read_models.h"

namespace caseledger::api {

// Registers the routes on `router`. `store`, `metrics` and `models` (if
// given) must outlive it. Readiness needs the store to accept appends and
// the read models to be healthy.
void AddOperationalRoutes(Router& router, const EventStore& store,
                          const HttpMetrics& metrics,
                          const projections::ReadModels* models = nullptr);

}  // namespace caseledger::api

// The operational routes every deployment has: /healthz, /readyz, /metrics.
#pragma once

#include "api/metrics.h"
#include "api/router.h"
#include "caseledger/event_store.h"

namespace caseledger::api {

// Registers the routes on `router`. `store` and `metrics` must outlive it.
void AddOperationalRoutes(Router& router, const EventStore& store,
                          const HttpMetrics& metrics);

}  // namespace caseledger::api

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

// The browser console: GET / (its page) and GET /console/{file} (its
// scripts and styles), compiled into the binary, each answer with a
// Content-Security-Policy that lets the page load and run only what this
// server serves, and never be framed.
void AddConsoleRoutes(Router& router);

}  // namespace caseledger::api

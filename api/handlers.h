// The operational routes every deployment has: /healthz, /readyz, /metrics.
#pragma once

#include "api/metrics.h"
#include "api/router.h"
#include "caseledger/event_store.h"
#include "caseledger/notify/notifier.h"
#include "caseledger/projections/read_models.h"

namespace caseledger::api {

// Registers the routes on `router`. `store`, `metrics`, `models` and
// `notifier` (if given) must outlive it. Readiness needs the store to
// accept appends and the read models to be healthy (alerting that has
// stopped shows in /metrics and the admin route, and does not take the
// server out of service).
void AddOperationalRoutes(Router& router, const EventStore& store,
                          const HttpMetrics& metrics,
                          const projections::ReadModels* models = nullptr,
                          const notify::Notifier* notifier = nullptr);

// The browser console: GET / (its page) and GET /console/{file} (its
// scripts and styles), compiled into the binary, each answer with a
// Content-Security-Policy that lets the page load and run only what this
// server serves, and never be framed.
void AddConsoleRoutes(Router& router);

}  // namespace caseledger::api

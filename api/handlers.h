// The operational routes every deployment has: /healthz, /readyz, /metrics.
#pragma once

#include "api/metrics.h"
#include "api/router.h"
#include "caseledger/event_store.h"
#include "caseledger/notify/notifier.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/replicate/replication.h"

namespace caseledger::api {

// Replication as the operational routes see it: a primary's publisher, or
// a follower (at most one of them).
struct ReplicationView {
  const replicate::Publisher* publisher = nullptr;
  const replicate::Follower* follower = nullptr;
};

// Registers the routes on `router`. `store`, `metrics`, `models`,
// `notifier` and the replication parts (if given) must outlive it.
// Readiness needs the store to accept appends, the read models to be
// healthy and, on a follower, the follower to be applying the stream
// (alerting that has stopped, or a primary that cannot reach its cluster,
// shows in /metrics and does not take the server out of service).
void AddOperationalRoutes(Router& router, const EventStore& store,
                          const HttpMetrics& metrics,
                          const projections::ReadModels* models = nullptr,
                          const notify::Notifier* notifier = nullptr,
                          ReplicationView replication = {});

// The browser console: GET / (its page) and GET /console/{file} (its
// scripts and styles), compiled into the binary, each answer with a
// Content-Security-Policy that lets the page load and run only what this
// server serves, and never be framed.
void AddConsoleRoutes(Router& router);

}  // namespace caseledger::api

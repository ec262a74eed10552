// The case routes: report a concern, run commands on a case, read its
// current state, its full history and its chain check. Every route
// authenticates the bearer token and asks the domain's policy table.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "api/auth.h"
#include "api/problem.h"
#include "api/router.h"
#include "api/session.h"
#include "api/worker_pool.h"
#include "caseledger/event_store.h"
#include "caseledger/notify/notifier.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/service/access.h"
#include "caseledger/service/case_service.h"

namespace spdlog {
class logger;
}

namespace caseledger::api {

struct CaseRouteDeps {
  EventStore& store;
  service::CaseService& service;
  TokenRegistry& tokens;
  WorkerPool& workers;  // runs commands (durable appends) off the I/O threads
  // The case lists come from here; null: GET /v1/cases answers 503.
  const projections::ReadModels* models = nullptr;
  std::shared_ptr<spdlog::logger> logger;
  size_t max_json_depth = 32;
  projections::SummaryOptions summary = {};  // small-number suppression
  // Learning records and counts of a month are released this many months
  // after it began (1: once it is over); 0: at once. A record that leaves
  // as soon as its event is recorded is dated by its arrival.
  uint64_t feed_release_delay_months = 1;
  // Takes a backup of the store (POST /v1/admin/backups) and says where and
  // up to which position; null: the route answers 503.
  std::function<StatusOr<nlohmann::json>()> backup = nullptr;
  // A command not handed to the store within this long of its request
  // being read is refused with 503 and writes nothing (a request's time
  // budget: work queued behind slow requests is shed, not piled up).
  std::chrono::milliseconds command_budget{10000};
  // An idle learning stream sends a comment this often.
  std::chrono::milliseconds stream_heartbeat{15000};
  // The console's sessions (POST /v1/session); null: only bearer tokens.
  SessionStore* sessions = nullptr;
  // The server speaks TLS: session cookies are Secure, and a console
  // request's Origin must be https.
  bool tls = false;
  // Alerting (GET /v1/admin/notifications); null: not configured, and the
  // route answers 503.
  const notify::Notifier* notifier = nullptr;
  // On a follower: where the records of reads go (to the primary, whose
  // log brings them back), instead of this node's log, which takes no
  // writes. `done` as for service::AppendReadRecords.
  std::function<void(std::vector<service::ReadRecord>,
                     std::function<void(Status)>)>
      forward_reads = nullptr;
};

// Registers the routes; `deps` must outlive the router.
void AddCaseRoutes(Router& router, CaseRouteDeps& deps);

}  // namespace caseledger::api

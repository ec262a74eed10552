#include "api/handlers.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace caseledger::api {
namespace {

HttpResponse Json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

void Gauge(std::string* out, const char* name, const char* help, uint64_t value,
           const char* type = "gauge") {
  *out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                      type, value);
}

// The notifier's counters: by channel, and the outbox's state.
void RenderNotifier(std::string* out, const notify::NotifierStats& s) {
  Gauge(out, "caseledger_notify_position",
        "Last log position the notifier has planned alerts for.", s.position);
  Gauge(out, "caseledger_notify_lag_events",
        "Events committed but not yet planned for alerts.", s.lag);
  Gauge(out, "caseledger_notify_healthy",
        "1 while the notifier plans alerts, 0 while it cannot.",
        s.healthy ? 1 : 0);
  Gauge(out, "caseledger_notify_pending",
        "Alerts in the outbox waiting to be sent.", s.pending);
  Gauge(out, "caseledger_notify_dead_letters",
        "Alerts in the outbox dead-lettered after their last attempt.", s.dead);
  Gauge(out, "caseledger_notify_planned_total", "Alerts planned since start.",
        s.planned, "counter");
  Gauge(out, "caseledger_notify_withheld_total",
        "Alerts not sent since start (recipient barred, or no longer "
        "needed).",
        s.withheld, "counter");
  // One family at a time, each with its HELP and TYPE.
  auto get = [](const std::map<std::string, uint64_t>& m, const char* key) {
    auto it = m.find(key);
    return it == m.end() ? uint64_t{0} : it->second;
  };
  *out +=
      "# HELP caseledger_notify_attempts_total Delivery attempts since start, "
      "by channel and result.\n"
      "# TYPE caseledger_notify_attempts_total counter\n";
  for (const char* channel : {"email", "webhook"}) {
    *out += fmt::format(
        "caseledger_notify_attempts_total{{channel=\"{0}\",result=\"ok\"}} "
        "{1}\n"
        "caseledger_notify_attempts_total{{channel=\"{0}\",result="
        "\"failed\"}} {2}\n",
        channel, get(s.attempts_ok, channel), get(s.attempts_failed, channel));
  }
  *out +=
      "# HELP caseledger_notify_outcomes_total Alerts delivered and "
      "dead-lettered since start, by channel.\n"
      "# TYPE caseledger_notify_outcomes_total counter\n";
  for (const char* channel : {"email", "webhook"}) {
    *out += fmt::format(
        "caseledger_notify_outcomes_total{{channel=\"{0}\",outcome="
        "\"delivered\"}} {1}\n"
        "caseledger_notify_outcomes_total{{channel=\"{0}\",outcome="
        "\"dead\"}} {2}\n",
        channel, get(s.delivered, channel), get(s.dead_lettered, channel));
  }
}

}  // namespace

// Replication: a primary's publishing, or a follower's applying.
void RenderReplication(std::string* out, ReplicationView r) {
  if (r.publisher != nullptr) {
    const replicate::PublisherStats s = r.publisher->stats();
    Gauge(out, "caseledger_replication_stored_position",
          "Last log position the replication stream has stored.",
          s.stored_position);
    Gauge(out, "caseledger_replication_lag_events",
          "Events committed here but not yet stored by the stream.",
          s.committed_position > s.stored_position
              ? s.committed_position - s.stored_position
              : 0);
    Gauge(out, "caseledger_replication_published_total",
          "Records the stream stored from this process.", s.published,
          "counter");
    Gauge(out, "caseledger_replication_failures_total",
          "Publishing attempts that failed and were retried.", s.failures,
          "counter");
    Gauge(out, "caseledger_replication_keys_total",
          "Data keys (wrapped) the key stream stored from this process.",
          s.keys_shipped, "counter");
    Gauge(out, "caseledger_replication_checkpoints_total",
          "Signed checkpoints of the head this process published.",
          s.checkpoints, "counter");
    Gauge(out, "caseledger_replication_epoch",
          "The primary's epoch this node holds (0: it holds none).",
          r.publisher->HoldsEpoch() ? s.epoch : 0);
    Gauge(out, "caseledger_replication_connected",
          "1 while connected to the replication cluster.", s.connected ? 1 : 0);
    Gauge(out, "caseledger_replication_healthy",
          "1 while publishing, 0 while it cannot (the log says why).",
          r.publisher->Health().ok() ? 1 : 0);
  }
  if (r.follower != nullptr) {
    const replicate::FollowerStats s = r.follower->stats();
    Gauge(out, "caseledger_replication_applied_position",
          "Last log position this follower has applied.", s.applied_position);
    Gauge(out, "caseledger_replication_pending_messages",
          "Stream messages not yet delivered to this follower.", s.pending);
    Gauge(out, "caseledger_replication_applied_total",
          "Records applied by this process.", s.applied, "counter");
    Gauge(out, "caseledger_replication_redelivered_total",
          "Records delivered again and skipped (already stored).",
          s.redelivered, "counter");
    Gauge(out, "caseledger_replication_keys_total",
          "Data keys (wrapped) this process took from the key stream.",
          s.keys_taken, "counter");
    Gauge(out, "caseledger_replication_checkpoints_total",
          "Signed checkpoints of the head this log was checked against.",
          s.checkpoints_checked, "counter");
    Gauge(out, "caseledger_replication_connected",
          "1 while connected to the replication cluster.", s.connected ? 1 : 0);
    Gauge(out, "caseledger_replication_healthy",
          "1 while applying the stream, 0 while it cannot (the log says "
          "why).",
          r.follower->Health().ok() ? 1 : 0);
  }
}

void AddOperationalRoutes(Router& router, const EventStore& store,
                          const HttpMetrics& metrics,
                          const projections::ReadModels* models,
                          const notify::Notifier* notifier,
                          ReplicationView replication) {
  router.Add("GET", "/healthz", [](const HttpRequest&, const PathParams&) {
    return Json(200, {{"status", "ok"}});
  });

  router.Add(
      "GET", "/readyz",
      [&store, models, replication](const HttpRequest&, const PathParams&) {
        Status health = store.Health();
        if (health.ok() && models && !models->Health().healthy) {
          // (The reason names the event and its case: it is in the
          // server's log, not on this unauthenticated route.)
          health = Status::Unavailable(
              "a projection has stopped; the server log says why");
        }
        if (health.ok() && replication.follower) {
          const Status f = replication.follower->Health();
          if (f.IsCorruption()) {
            health = Status::Unavailable(
                "this follower has stopped applying the replication "
                "stream: a record broke the hash chain; the server "
                "log says which");
          } else if (!f.ok()) {
            health = Status::Unavailable(
                "this follower cannot reach the replication stream");
          }
        }
        if (health.ok() && replication.publisher &&
            replication.publisher->Health().IsFailedPrecondition()) {
          health = Status::Unavailable(
              "another node was promoted to primary in this node's place: "
              "it takes no writes");
        }
        if (!health.ok()) {
          HttpResponse r =
              Problem(503, "Service Unavailable", health.message());
          r.headers.emplace_back("Retry-After", "5");
          return r;
        }
        return Json(200,
                    {{"status", "ready"},
                     {"log_position", store.committed_position().value()}});
      });

  router.Add(
      "GET", "/metrics",
      [&store, &metrics, models, notifier, replication](const HttpRequest&,
                                                        const PathParams&) {
        HttpResponse r;
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        StoreStats s = store.stats();
        Gauge(&r.body, "caseledger_log_position",
              "Last durable global position of the log.",
              store.committed_position().value());
        r.body +=
            "# HELP caseledger_appends_total Append calls by result.\n"
            "# TYPE caseledger_appends_total counter\n";
        r.body += fmt::format(
            "caseledger_appends_total{{result=\"committed\"}} {}\n"
            "caseledger_appends_total{{result=\"deduplicated\"}} {}\n"
            "caseledger_appends_total{{result=\"rejected\"}} {}\n",
            s.appends_committed, s.appends_deduplicated, s.appends_rejected);
        Gauge(&r.body, "caseledger_events_committed_total",
              "Events written to the log.", s.events_committed, "counter");
        Gauge(&r.body, "caseledger_fsync_groups_total",
              "Synced write batches (group commits).", s.groups_committed,
              "counter");
        Gauge(&r.body, "caseledger_store_write_microseconds_total",
              "Writer time inside RocksDB writes.", s.write_micros, "counter");
        const Status health = store.Health();
        Gauge(&r.body, "caseledger_store_writable",
              "1 while the store accepts appends, 0 while it refuses them.",
              health.ok() ? 1 : 0);
        Gauge(&r.body, "caseledger_store_disk_full",
              "1 while appends are refused because the disk is full.",
              health.IsNoSpace() ? 1 : 0);
        Gauge(&r.body, "caseledger_store_write_failures_total",
              "Writes that failed (each refuses appends until recovery).",
              s.write_failures, "counter");
        Gauge(&r.body, "caseledger_store_recoveries_total",
              "Times the store accepted appends again after a failed write.",
              s.recoveries, "counter");
        if (models) {
          projections::ProjectionHealth h = models->Health();
          Gauge(&r.body, "caseledger_projection_position",
                "Last log position applied by the case read model.",
                h.position);
          Gauge(&r.body, "caseledger_projection_lag_events",
                "Events committed but not yet applied.", h.lag);
          Gauge(&r.body, "caseledger_projection_healthy",
                "1 while the read models apply events, 0 once stopped.",
                h.healthy ? 1 : 0);
        }
        if (notifier) RenderNotifier(&r.body, notifier->Stats());
        RenderReplication(&r.body, replication);
        metrics.Render(&r.body);
        return r;
      });
}

void HttpMetrics::Record(const std::string& route, int status,
                         std::chrono::microseconds latency) {
  double secs = static_cast<double>(latency.count()) / 1e6;
  MutexLock lk(&mu_);
  ++requests_[{route, status}];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (secs <= kBuckets[i]) ++buckets_[i];
  }
  ++count_;
  sum_seconds_ += secs;
}

void HttpMetrics::Render(std::string* out) const {
  MutexLock lk(&mu_);
  *out +=
      "# HELP caseledger_http_requests_total HTTP requests by route and "
      "status.\n# TYPE caseledger_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    *out += fmt::format(
        "caseledger_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
        key.first, key.second, n);
  }
  *out +=
      "# HELP caseledger_http_request_duration_seconds Request latency.\n"
      "# TYPE caseledger_http_request_duration_seconds histogram\n";
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    *out += fmt::format(
        "caseledger_http_request_duration_seconds_bucket{{le=\"{}\"}} {}\n",
        kBuckets[i], buckets_[i]);
  }
  *out += fmt::format(
      "caseledger_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n"
      "caseledger_http_request_duration_seconds_sum {}\n"
      "caseledger_http_request_duration_seconds_count {}\n",
      count_, sum_seconds_, count_);
}

}  // namespace caseledger::api

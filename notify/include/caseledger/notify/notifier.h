// The notifier: alerts people about cases, from the log.
//
// A checkpointed subscriber of the log plans notifications by the rules
// (caseledger/notify/rules.h) into its own outbox (<data>/notify), with
// the position it planned up to, in one synced write: nothing planned is
// lost across a crash or restart, and nothing is planned twice. Deadlines
// are watched as timers in the same outbox. Each receiver (the SMTP server,
// each webhook endpoint) has a delivery lane of its own, so a slow or
// failing receiver holds up neither appends nor the others. Delivery is at
// least once: every notification has a stable id, sent as the webhook's
// `webhook-id` and the e-mail's Message-ID, so a receiver can drop a
// duplicate (one follows only a crash between sending and recording).
// Failures are retried with exponential backoff and jitter, then
// dead-lettered; every attempt and outcome is recorded.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/notify/rules.h"

namespace spdlog {
class logger;
}

namespace caseledger::notify {

// Where one person is told: an e-mail address, a webhook endpoint (by
// name), or both.
struct Contact {
  std::string email;
  std::string webhook;
};

// A webhook endpoint. Only https:// URLs.
struct WebhookEndpoint {
  std::string url;
  // A file holding the signing secret, "whsec_" + base64 (Standard
  // Webhooks). Never in the configuration itself.
  std::string secret_file;
  std::string ca_file;  // empty: the system's trust store
};

// The SMTP server. smtp:// URLs must upgrade with STARTTLS (a server that
// does not offer it is refused); smtps:// is TLS from the start.
struct SmtpServer {
  std::string url;   // smtp://host:587 or smtps://host:465
  std::string from;  // the envelope and From address
  // Required: mail is sent only after AUTH (over TLS).
  std::string username;
  std::string password_file;  // never in the configuration itself
  std::string ca_file;        // empty: the system's trust store
};

struct RetryPolicy {
  uint32_t max_attempts = 10;  // then dead-lettered
  std::chrono::milliseconds initial{30000};
  std::chrono::milliseconds max{3600000};
};

struct NotifyConfig {
  bool enabled = false;
  std::string console_url;  // links in messages
  std::vector<Rule> rules = DefaultRules();
  Directory directory;
  std::map<std::string, Contact> contacts;  // by actor id
  std::map<std::string, WebhookEndpoint> webhooks;
  std::optional<SmtpServer> smtp;
  RetryPolicy retry;
  std::chrono::milliseconds send_timeout{15000};
};

// How long to wait after the `failures`-th failed attempt: `initial`,
// doubling with each failure up to `max`, of which the second half is
// scaled by `jitter` (0 to 1; random in use).
std::chrono::milliseconds RetryDelay(const RetryPolicy& policy,
                                     uint32_t failures, double jitter);

// Checks a configuration as a whole (rules, every contact's endpoint
// configured, URLs of the right schemes, no line breaks in addresses, SMTP
// authentication, nobody both a DSL and an alternative DSL).
Status CheckConfig(const NotifyConfig& config);

// One message on its way out.
struct Outgoing {
  std::string id;
  std::string channel;  // email, webhook
  std::string to;       // the e-mail address, or the webhook's URL
  Timestamp at;         // of this attempt
  Message message;
};

// What a receiver answered.
struct SendResult {
  bool ok = false;
  std::string detail;  // "250 OK", "HTTP 503", "connect: refused", ...
};

struct NotifierOptions {
  // Now (default: the system clock): the planner's and timers' time.
  std::function<Timestamp()> clock;
  // Tests: sends instead of the network.
  std::function<SendResult(const Outgoing&)> transport;
  // Tests: runs after a send, before its outcome is recorded.
  std::function<void(const Outgoing&, const SendResult&)> after_send;
};

struct NotifierStats {
  uint64_t position = 0;  // log position planned up to
  uint64_t lag = 0;       // events committed but not yet planned
  bool healthy = true;
  std::string error;
  uint64_t pending = 0;  // in the outbox, to be sent
  uint64_t dead = 0;     // dead-lettered, in the outbox
  // Since start, by channel: attempts that succeeded and that failed, and
  // notifications delivered, dead-lettered and withheld.
  std::map<std::string, uint64_t> attempts_ok;
  std::map<std::string, uint64_t> attempts_failed;
  std::map<std::string, uint64_t> delivered;
  std::map<std::string, uint64_t> dead_lettered;
  uint64_t withheld = 0;
  uint64_t planned = 0;
  // The clock's time at the planner's last pass over the timers: every
  // deadline due by then has been acted on.
  Timestamp timers_checked;
};

struct ListQuery {
  std::string status;  // pending, delivered, dead, withheld; empty: all
  std::string before;  // a notification id: list those made before it
  size_t limit = 50;
};

class Notifier {
 public:
  // Opens (creating) the outbox in `dir`. `store` must outlive the
  // notifier. kInvalidArgument if the configuration does not hold;
  // kNotFound if a secret file cannot be read.
  static StatusOr<std::unique_ptr<Notifier>> Open(
      const std::string& dir, const EventStore& store,
      std::shared_ptr<const domain::EventCatalog> catalog, NotifyConfig config,
      std::shared_ptr<spdlog::logger> logger, NotifierOptions options = {});

  virtual ~Notifier() = default;
  // Starts the planner and one lane per receiver; Stop() joins them
  // (an attempt in flight finishes first, bounded by the send timeout).
  virtual void Start() = 0;
  virtual void Stop() = 0;
  // Looks at the clock again now (tests that move it).
  virtual void Wake() = 0;
  // Blocks until the log is planned up to `position`, or the timeout.
  virtual bool WaitForPosition(GlobalPosition position,
                               std::chrono::milliseconds timeout) const = 0;

  virtual NotifierStats Stats() const = 0;
  // Notifications newest first, each with its attempts, as the admin route
  // shows them; {"notifications": [...], "next": id or null}.
  virtual StatusOr<nlohmann::json> List(const ListQuery& query) const = 0;
};

// <data>/notify.
std::string NotifyDir(const std::string& data_dir);

}  // namespace caseledger::notify

// The server's configuration: defaults that work for a first run on
// localhost, then a JSON file (`caseledger serve --config FILE`), then
// CASELEDGER_* environment variables, then command-line flags, each
// overriding the one before. Every value is checked when it is read; a bad
// one is an error naming where it came from (a JSON pointer in the file, or
// the variable), never a silent default.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "api/server.h"
#include "caseledger/domain/decide.h"
#include "caseledger/notify/notifier.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/replicate/replication.h"
#include "caseledger/status.h"

namespace caseledger::api {

struct ServeConfig {
  std::string data = "./data";  // the store directory
  ServerOptions server;         // listen address, threads, limits, TLS
  size_t workers = 4;           // threads that run commands (durable appends)
  size_t max_json_depth = 32;   // deeper request bodies: 400
  // A command not handed to the store within this long of being read is
  // refused with 503, writing nothing.
  std::chrono::milliseconds command_budget{10000};
  // The learning feed's pseudonym key: a file holding it (empty: the
  // CASELEDGER_PSEUDONYM_KEY variable, else <data>/pseudonym.key, made on
  // first use). Never in the config file itself.
  std::string pseudonym_key_file;
  // Where backups are made (POST /v1/admin/backups; empty: <data>-backups).
  std::string backup_dir;
  // The key-encryption key that wraps every data key: a file, mode 0600
  // (empty: a systemd credential named caseledger-kek, else the
  // CASELEDGER_KEK variable). Never in the config file itself.
  std::string kek_file;
  // Development only (--dev-kek): a KEK kept inside the data directory,
  // made on first use, warned about at every start.
  bool dev_kek = false;
  // The list of destroyed data keys (empty: <data>/keys.destroyed). Keep it
  // off the data volume: restoring a backup applies it.
  std::string destroyed_keys_file;
  projections::SummaryOptions summary;  // small-number suppression
  // Learning of a month is released this many months after it began (1:
  // once it is over; 0: at once).
  uint64_t feed_release_delay_months = 1;
  domain::DomainConfig domain;  // deadlines, retention rules
  // How often the server runs the retention sweep (the first time once the
  // read models have caught up after start).
  std::chrono::hours retention_sweep_interval{24};
  // A console session ends after this long without a request.
  std::chrono::minutes session_idle{30};
  // Alerting (notify/): off unless the configuration has a "notify"
  // section.
  notify::NotifyConfig notify;
  // Replication (replicate/): off unless the configuration has a
  // "replication" section.
  struct Replication {
    bool enabled = false;
    replicate::ReplicationConfig nats;
    // Quorum mode: a command is answered only once the stream has stored
    // its events on a quorum of the cluster's servers; after `quorum_wait`
    // without that, 503 (the events are in this node's log: a retry with
    // the same event ids is answered from it, once they are stored).
    bool quorum = false;
    std::chrono::milliseconds quorum_wait{10000};
    // Where clients should send writes, named in a follower's refusals
    // (e.g. https://caseledger-a.example.org).
    std::string primary_url;
  } replication;
  bool verbose = false;
};

// Applies a JSON configuration document (see config.example.json and the
// README) over `config`. Unknown keys are errors (a typo must not be
// ignored), as are values of the wrong type or out of range.
Status ApplyConfigText(const std::string& text, ServeConfig* config);

// Reads FILE and applies it.
Status ApplyConfigFile(const std::string& path, ServeConfig* config);

// Applies CASELEDGER_DATA, CASELEDGER_LISTEN, CASELEDGER_THREADS,
// CASELEDGER_WORKERS, CASELEDGER_MAX_CONNECTIONS, CASELEDGER_MAX_BODY_BYTES,
// CASELEDGER_TLS_CERTIFICATE, CASELEDGER_TLS_PRIVATE_KEY,
// CASELEDGER_PSEUDONYM_KEY_FILE, CASELEDGER_BACKUP_DIR, CASELEDGER_KEK_FILE,
// CASELEDGER_DESTROYED_KEYS_FILE, read through `getenv`
// (tests pass their own).
Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv,
                        ServeConfig* config);

// "HOST:PORT" (or "[v6]:PORT") into the server options.
Status ApplyListen(const std::string& listen, ServerOptions* server);

// What the configuration must satisfy as a whole: TLS needs both a
// certificate and a key; plain HTTP only on a loopback address.
Status CheckConfig(const ServeConfig& config);

}  // namespace caseledger::api

// The whole server over one data directory, as `caseledger serve` runs it.
//
// Open wires the parts in order: the event store, the first tokens (on a
// new store), the demo cases (if asked, on a new store), the read models
// (started), the case service, the routes and the listener. Close tears
// them down in reverse: the listener stops taking requests, commands in
// flight finish, the read models stop, and the store closes last.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "api/config.h"
#include "caseledger/service/seed.h"
#include "caseledger/status.h"

namespace caseledger::api {

// What a new store was given on its first start: the caller shows the
// tokens once (only their hashes are kept).
struct FirstRun {
  std::string admin_token;  // actor admin-1
  std::string dsl_token;    // actor dsl-1
  // The demo cases written, when asked for.
  std::optional<service::SeedReport> demo;
};

class App {
 public:
  struct Options {
    // On a new store, write a few realistic (fictional) case histories,
    // spread over the last three months, prefixed "demo-".
    bool demo = false;
    // Follow the replication stream (`caseledger follow`): the store is a
    // replica that takes its log from the stream; the read routes and the
    // learning feed are served, and writes are refused with a problem
    // naming the primary. No first tokens, alerts or retention sweeps: the
    // primary's log brings whatever they would write.
    bool follower = false;
  };

  static StatusOr<std::unique_ptr<App>> Open(
      const ServeConfig& config, std::shared_ptr<spdlog::logger> logger,
      Options options);
  virtual ~App() = default;  // Close(), if not done

  // Set when this start made the store's first tokens.
  virtual const std::optional<FirstRun>& first_run() const = 0;
  virtual uint16_t port() const = 0;
  // Serves until SIGINT or SIGTERM.
  virtual void Run() = 0;
  // Tears the parts down in reverse; the store's close status.
  virtual Status Close() = 0;
};

}  // namespace caseledger::api

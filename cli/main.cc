// caseledger: the one executable. Each subcommand wires what it needs
// explicitly (config, logger, store, ...) and tears it down in reverse.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "api/handlers.h"
#include "api/router.h"
#include "api/server.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/service/seed.h"

namespace {

using caseledger::EventStore;
using caseledger::Options;
using caseledger::Status;

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& name,
                                           bool verbose) {
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  return logger;
}

int Fail(const std::string& what, const Status& s) {
  std::cerr << "caseledger: " << what << ": " << s.ToString() << "\n";
  return s.IsInvalidArgument() ? 2 : 1;
}

int RunVerify(const std::string& data, const std::optional<std::string>& id,
              bool verbose) {
  Options options;
  options.create_if_missing = false;
  // Read-only: verify never changes a store and can run beside a server.
  options.read_only = true;
  options.logger = MakeLogger("caseledger", verbose);
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  auto report = store->Verify(id);
  if (!report.ok()) return Fail("verify", report.status());
  if (report->ok) {
    std::cout << "ok: " << report->events_checked << " events in "
              << report->streams_checked << " case(s) verified; head at "
              << store->Head().position.value() << " "
              << caseledger::HashToHex(store->Head().log_hash) << "\n";
    return 0;
  }
  const auto& b = *report->first_broken;
  std::cout << "BROKEN at position " << b.position.value();
  if (!b.stream_id.empty()) {
    std::cout << " (case " << b.stream_id << ", version " << b.version.value()
              << ")";
  }
  std::cout << ": " << b.reason << "\n"
            << report->events_checked << " events verified before it\n";
  return 3;
}

// Splits "HOST:PORT" (the host may be a bracketed IPv6 address).
bool ParseListen(const std::string& listen, std::string* host,
                 uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string h = listen.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  }
  try {
    size_t used = 0;
    unsigned long p = std::stoul(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  *host = h;
  return true;
}

int RunServe(const std::string& data, const std::string& listen, int threads,
             bool verbose) {
  // Wiring, in order; torn down in reverse.
  auto logger = MakeLogger("caseledger", verbose);
  caseledger::api::ServerOptions server_options;
  if (!ParseListen(listen, &server_options.host, &server_options.port)) {
    std::cerr << "caseledger: --listen must be HOST:PORT, got '" << listen
              << "'\n";
    return 2;
  }
  server_options.threads = threads;

  Options options;
  options.logger = logger;
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);

  caseledger::api::HttpMetrics metrics;
  caseledger::api::Router router;
  caseledger::api::AddOperationalRoutes(router, *store, metrics);

  auto server =
      caseledger::api::Server::Create(server_options, router, metrics, logger);
  if (!server.ok()) return Fail("starting the server", server.status());
  logger->info("serving {} on http://{}:{} (log at position {})", data,
               server_options.host, (*server)->port(),
               store->committed_position().value());
  (*server)->Run(/*handle_signals=*/true);
  server->reset();

  s = store->Close();
  if (!s.ok()) return Fail("closing the store", s);
  logger->info("stopped cleanly");
  return 0;
}

int RunSeed(const std::string& data, uint64_t cases, uint64_t seed, bool sync,
            bool verbose) {
  auto logger = MakeLogger("caseledger", verbose);
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  Options options;
  options.logger = logger;
  options.sync = sync;
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  caseledger::service::SeedOptions so;
  so.cases = cases;
  so.seed = seed;
  so.progress = [&](uint64_t done) {
    if (done % 1000 == 0) logger->info("seeded {} of {} cases", done, cases);
  };
  auto report = caseledger::service::SeedCases(*store, *catalog,
                                               caseledger::domain::DomainConfig{},
                                               so);
  if (!report.ok()) return Fail("seed", report.status());
  s = store->Close();
  if (!s.ok()) return Fail("closing the store", s);
  std::cout << "seeded " << report->cases << " cases: " << report->events
            << " events (" << report->closed << " closures, "
            << report->reopened << " reopened, " << report->withdrawals
            << " consent withdrawals, " << report->overrides
            << " overrides, " << report->escalations << " escalations, "
            << report->amendments << " amendments, "
            << report->conflicts_of_interest << " conflicts of interest)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"caseledger: an event-sourced case ledger for adult safeguarding"};
  app.require_subcommand(1);
  std::string data = "./data";
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug detail");

  auto* verify = app.add_subcommand(
      "verify",
      "Recompute the hash chains and indexes; name the first broken link");
  verify->add_option("--data", data, "Store directory")->capture_default_str();
  std::optional<std::string> case_id;
  verify->add_option("--case", case_id, "Verify only this case's chain");

  auto* serve = app.add_subcommand(
      "serve", "Open (or create) the store and serve the HTTP API");
  serve->add_option("--data", data, "Store directory")->capture_default_str();
  std::string listen = "127.0.0.1:8080";
  serve->add_option("--listen", listen, "HOST:PORT to listen on")
      ->capture_default_str();
  int threads = 0;
  serve->add_option("--threads", threads, "I/O threads (0: one per core)")
      ->check(CLI::Range(0, 256));

  auto* seed = app.add_subcommand(
      "seed", "Write synthetic, realistic case lifecycles (fictional people) "
              "through the command path");
  seed->add_option("--data", data, "Store directory")->capture_default_str();
  uint64_t seed_cases = 100;
  seed->add_option("--cases", seed_cases, "How many cases")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}));
  uint64_t seed_value = 20261122;
  seed->add_option("--seed", seed_value, "Random seed (same seed, same cases)")
      ->capture_default_str();
  bool seed_sync = false;
  seed->add_flag("--sync", seed_sync,
                 "fsync every append (default: off; the store is flushed "
                 "when seeding ends)");

  CLI11_PARSE(app, argc, argv);

  if (verify->parsed()) return RunVerify(data, case_id, verbose);
  if (serve->parsed()) return RunServe(data, listen, threads, verbose);
  if (seed->parsed()) {
    return RunSeed(data, seed_cases, seed_value, seed_sync, verbose);
  }
  return 0;
}

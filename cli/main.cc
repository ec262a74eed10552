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

#include "caseledger/event_store.h"

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

  CLI11_PARSE(app, argc, argv);

  if (verify->parsed()) return RunVerify(data, case_id, verbose);
  return 0;
}

// caseledger: the one executable. Each subcommand wires what it needs
// explicitly (config, logger, store, ...) and tears it down in reverse.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/app.h"
#include "api/config.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/keys/keys.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/replicate/replication.h"
#include "caseledger/service/access.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "caseledger/service/replay.h"
#include "caseledger/service/seed.h"

namespace {

using caseledger::EventStore;
using caseledger::Options;
using caseledger::Status;
using caseledger::StatusOr;

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

// The log against every signed checkpoint in the cluster (after the
// chains verified).
int VerifyAgainstCheckpoints(
    const EventStore& store,
    const caseledger::replicate::ReplicationConfig& config) {
  auto checked = caseledger::replicate::VerifyCheckpoints(store, config);
  if (checked.status().IsCorruption()) {
    std::cout << "BROKEN against the signed checkpoints: "
              << checked.status().message() << "\n";
    return 3;
  }
  if (!checked.ok()) return Fail("reading the checkpoints", checked.status());
  std::cout << "ok: the log holds all " << checked->checked
            << " signed checkpoints it reaches (the last at position "
            << checked->last_position << ")";
  if (checked->beyond_head > 0) {
    std::cout << "; " << checked->beyond_head
              << " are beyond its head, not yet checked";
  }
  std::cout << "\n";
  return 0;
}

int RunVerify(
    const std::string& data, const std::optional<std::string>& id,
    const std::optional<caseledger::replicate::ReplicationConfig>& checkpoints,
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
    return checkpoints ? VerifyAgainstCheckpoints(*store, *checkpoints) : 0;
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

// Shows a new store's first tokens, once, with a working curl example.
void PrintFirstRun(const caseledger::api::FirstRun& first,
                   const caseledger::api::ServerOptions& so) {
  const bool tls = !so.tls_certificate_file.empty();
  std::string host =
      so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
  std::string base = std::string(tls ? "https://" : "http://") + host + ":" +
                     std::to_string(so.port);
  std::cout
      << "\nA new store: two first tokens (shown once; only their hashes are "
         "kept):\n"
      << "  admin  (actor admin-1): " << first.admin_token << "\n"
      << "  dsl    (actor dsl-1):   " << first.dsl_token << "\n\n"
      << "Try:\n  curl -s" << (tls ? "k" : "") << " -H 'Authorization: Bearer "
      << first.dsl_token << "' -H 'Content-Type: application/json' \\\n"
      << "    -d @scripts/examples/report.json " << base << "/v1/cases\n"
      << "More tokens: caseledger token create --data DIR --actor ID "
         "--role ROLE (with the server stopped)\n\n";
  if (first.demo) {
    std::cout << "Seeded " << first.demo->cases << " demo cases ("
              << first.demo->events
              << " events), e.g. GET /v1/cases/demo-000001/history\n\n";
  }
  std::cout << std::flush;
}

int RunRebuild(const std::string& data, bool verbose) {
  auto logger = MakeLogger("caseledger", verbose);
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  Options options;
  options.logger = logger;
  options.create_if_missing = false;
  options.read_only = true;  // a rebuild only reads the log
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  auto key = caseledger::service::LoadPseudonymKey(data);
  if (!key.ok()) return Fail("the pseudonym key", key.status());
  auto models = caseledger::projections::ReadModels::Open(
      caseledger::service::ProjectionsDir(data), *store, *catalog, logger,
      *key);
  if (!models.ok()) return Fail("opening the read models", models.status());
  auto start = std::chrono::steady_clock::now();
  s = (*models)->Rebuild();
  if (!s.ok()) return Fail("rebuild", s);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  uint64_t events = (*models)->Health().position;
  std::cout << "rebuilt the case read model to position " << events << " in "
            << secs << " s ("
            << static_cast<uint64_t>(static_cast<double>(events) /
                                     std::max(secs, 1e-9))
            << " events/s)\n";
  // Any flush or compaction still running ends before the command does, so
  // the store it leaves is settled (closing would abandon a compaction, for
  // the next open to start again).
  start = std::chrono::steady_clock::now();
  s = (*models)->WaitForCompactions(std::chrono::minutes(30));
  if (!s.ok()) return Fail("waiting for compactions", s);
  std::cout << "compacted in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             start)
                   .count()
            << " s\n";
  return 0;
}

// Opens an existing store for writing (or, with `init`, makes a new one
// first), runs `fn` on it and closes it; `fn` prints its own result and
// returns the exit code. Where there is no store, says so plainly.
int WithExistingStore(const std::string& data, bool verbose,
                      const std::function<int(EventStore&)>& fn,
                      bool init = false) {
  if (!init && !std::filesystem::exists(data + "/CURRENT")) {
    std::cerr << "caseledger: there is no store in " << data
              << " (start `caseledger serve --data " << data
              << "` once to make one, or add --init)\n";
    return 2;
  }
  Options options;
  options.logger = MakeLogger("caseledger", verbose);
  options.create_if_missing = init;
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  const int rc = fn(*store);
  s = store->Close();
  if (!s.ok()) return Fail("closing the store", s);
  return rc;
}

int RunTokenCreate(const std::string& data, const std::string& actor_id,
                   const std::string& role_name, bool init, bool verbose) {
  auto role = caseledger::domain::ParseRole(role_name);
  if (!role) {
    std::cerr << "caseledger: --role must be one of reporter, dsl, alt_dsl, "
                 "reviewer, integration, admin\n";
    return 2;
  }
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  return WithExistingStore(
      data, verbose,
      [&](EventStore& store) {
        auto token = caseledger::service::IssueToken(
            store, **catalog, caseledger::domain::Actor{actor_id, *role},
            "caseledger-cli");
        if (!token.ok()) return Fail("issuing a token", token.status());
        std::cout << *token << "\n";
        return 0;
      },
      init);
}

// The data keys of `data` (the KEK as configured), or a message and why not.
StatusOr<caseledger::service::DataKeys> OpenKeys(
    const std::string& data, const caseledger::service::KeyConfig& config,
    bool verbose) {
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return catalog.status();
  return caseledger::service::OpenDataKeys(
      data, config, *catalog, MakeLogger("caseledger-keys", verbose));
}

int RunBackup(const std::string& data, const std::string& to,
              const std::string& key_file,
              const caseledger::service::KeyConfig& key_config, bool verbose) {
  auto keys = OpenKeys(data, key_config, verbose);
  if (!keys.ok()) return Fail("opening the data keys", keys.status());
  return WithExistingStore(data, verbose, [&](EventStore& store) {
    auto made =
        caseledger::service::BackUp(store, *keys->store, data, key_file,
                                    caseledger::service::BackupRoot(data, to));
    if (!made.ok()) return Fail("backing up", made.status());
    std::cout << "backed up " << data << " to "
              << (*made)["backup"].get<std::string>() << " (every event up to "
              << "position " << (*made)["position"] << ")\n";
    return 0;
  });
}

int RunRestore(const std::string& from, const std::string& data,
               const std::vector<std::string>& destroyed_lists,
               const caseledger::service::KeyConfig& key_config, bool verbose) {
  Options options;
  options.logger = MakeLogger("caseledger", verbose);
  auto restored = caseledger::RestoreBackup(from, data, options);
  if (!restored.ok()) {
    Fail("restoring " + from, restored.status());
    return restored.status().IsCorruption() ? 3 : 1;
  }
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  auto destroyed = caseledger::service::RestoreKeys(
      from, data, destroyed_lists, key_config, *catalog, options.logger);
  if (!destroyed.ok())
    return Fail("restoring the data keys", destroyed.status());
  std::cout << "restored " << from << " into " << data
            << " (verified: every event up to position " << restored->value()
            << "; " << *destroyed
            << " destroyed keys applied); the read models are rebuilt when "
               "the server starts on it\n";
  return 0;
}

int RunNewKek(const std::string& path) {
  auto kek = caseledger::keys::Kek::CreateFile(path);
  if (!kek.ok()) return Fail("making a KEK", kek.status());
  std::cout << "made KEK " << (*kek)->id() << " in " << path
            << " (mode 0600). Keep it off the data volume and back it up "
               "separately: without it no personal data can be read.\n";
  return 0;
}

int RunRotate(const std::string& data, const std::string& new_kek_file,
              const caseledger::service::KeyConfig& key_config, bool verbose) {
  auto current = caseledger::keys::LoadKek(key_config.kek_file);
  if (!current.ok()) return Fail("the current KEK", current.status());
  auto next = caseledger::keys::Kek::ReadFile(new_kek_file);
  if (!next.ok()) return Fail("the new KEK", next.status());
  caseledger::keys::KeyStoreOptions o;
  o.create_if_missing = false;
  o.destroyed_list = key_config.destroyed_list;
  o.logger = MakeLogger("caseledger-keys", verbose);
  std::unique_ptr<caseledger::keys::KeyStore> store;
  // The new KEK is given as an older one too: a rotation cut short left
  // some keys under it.
  Status s = caseledger::keys::KeyStore::Open(
      o, caseledger::service::KeysDir(data), *current, {*next}, &store);
  if (!s.ok()) return Fail("opening the key store", s);
  auto report = store->Rotate(*next);
  if (!report.ok()) return Fail("rotating", report.status());
  std::cout << "re-wrapped " << report->rewrapped << " data keys under KEK "
            << (*next)->id() << " (" << report->already
            << " were already); no event changed. Configure " << new_kek_file
            << " as the KEK from now on.\n";
  return 0;
}

// Promotes this follower's store (its server stopped) to primary: see
// replicate::Promote.
int RunPromote(const std::string& data,
               caseledger::replicate::ReplicationConfig config,
               int catch_up_seconds,
               const caseledger::service::KeyConfig& key_config, bool verbose) {
  Status s = caseledger::replicate::CheckConfig(config);
  if (!s.ok()) {
    std::cerr << "caseledger: configuration: " << s.message() << "\n";
    return 2;
  }
  if (!std::filesystem::exists(data + "/CURRENT")) {
    return Fail("promoting", Status::NotFound("there is no store in " + data));
  }
  auto logger = MakeLogger("caseledger", verbose);
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  auto keys =
      caseledger::service::OpenDataKeys(data, key_config, *catalog, logger);
  if (!keys.ok()) return Fail("opening the data keys", keys.status());
  Options options;
  options.logger = logger;
  options.create_if_missing = false;
  options.replica = true;  // until promoted, it takes only the stream
  std::unique_ptr<EventStore> store;
  s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  s = caseledger::service::FinishPlannedErasures(*store, *keys->store,
                                                 logger.get())
          .status();
  if (!s.ok()) return Fail("finishing planned erasures", s);
  const std::string node = config.node;
  auto promoted = caseledger::replicate::Promote(
      *store, std::move(config), data + "/replica.checkpoint",
      {keys->store.get(), caseledger::service::ErasedKeyScopeOf},
      std::chrono::seconds(catch_up_seconds));
  if (!promoted.ok()) return Fail("promoting", promoted.status());
  std::cout << "promoted: node " << node << " holds epoch " << promoted->epoch
            << "; its log ends at position " << promoted->position.value()
            << " " << caseledger::HashToHex(promoted->log_hash)
            << ". Start it with `caseledger serve` and a replication section "
               "naming node "
            << node << ".\n";
  return 0;
}

int RunTokenRevoke(const std::string& data, const std::string& token,
                   const std::string& actor_id, bool verbose) {
  if (token.empty() == actor_id.empty()) {
    std::cerr << "caseledger: token revoke needs --token TOKEN or --actor ID\n";
    return 2;
  }
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  return WithExistingStore(data, verbose, [&](EventStore& store) {
    auto revoked = caseledger::service::RevokeTokens(
        store, **catalog, token, actor_id, "caseledger-cli");
    if (!revoked.ok()) return Fail("revoking", revoked.status());
    std::cout << "revoked " << *revoked << " token"
              << (*revoked == 1 ? "" : "s") << "\n";
    return 0;
  });
}

int RunReplay(const std::string& data, const std::string& case_id,
              std::optional<uint64_t> at,
              const std::optional<std::string>& until, bool steps,
              caseledger::service::KeyConfig key_config, bool verbose) {
  caseledger::service::ReplayPoint point;
  point.at_version = at;
  if (until) {
    auto t = caseledger::ParseTimestamp(*until);
    if (!t.ok()) return Fail("--until", t.status());
    point.until = *t;
  }
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  Options options;
  options.logger = MakeLogger("caseledger", verbose);
  options.create_if_missing = false;
  options.read_only = true;  // can run beside a server; changes nothing
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  key_config.read_only = true;
  auto keys = caseledger::service::OpenDataKeys(data, key_config, *catalog,
                                                options.logger);
  if (!keys.ok()) return Fail("opening the data keys", keys.status());
  caseledger::service::CaseService service(
      *store, *catalog, caseledger::domain::DomainConfig{}, *keys->sealer);
  auto out =
      steps ? caseledger::service::ReplaySteps(*store, service, case_id, point)
            : caseledger::service::ReplayState(*store, service, case_id, point);
  if (!out.ok()) return Fail("replay", out.status());
  std::cout << out->dump(2) << "\n";
  return 0;
}

// The store, its data keys (writable) and the service over them, for the
// offline commands that decide and write (server stopped). Erasures a crash
// left half done are finished first.
struct Offline {
  std::shared_ptr<const caseledger::domain::EventCatalog> catalog;
  caseledger::service::DataKeys keys;
  std::unique_ptr<EventStore> store;
  std::unique_ptr<caseledger::service::CaseService> service;
  std::shared_ptr<spdlog::logger> logger;
};

StatusOr<Offline> OpenOffline(const std::string& data,
                              const caseledger::service::KeyConfig& key_config,
                              const caseledger::domain::DomainConfig& domain,
                              bool verbose) {
  if (!std::filesystem::exists(data + "/CURRENT")) {
    return Status::NotFound("there is no store in " + data);
  }
  Offline o;
  o.logger = MakeLogger("caseledger", verbose);
  ASSIGN_OR_RETURN(o.catalog, caseledger::domain::EventCatalog::Load());
  ASSIGN_OR_RETURN(o.keys, caseledger::service::OpenDataKeys(
                               data, key_config, o.catalog, o.logger));
  Options options;
  options.logger = o.logger;
  options.create_if_missing = false;
  RETURN_IF_ERROR(EventStore::Open(options, data, &o.store));
  RETURN_IF_ERROR(caseledger::service::FinishPlannedErasures(
                      *o.store, *o.keys.store, o.logger.get())
                      .status());
  o.service = std::make_unique<caseledger::service::CaseService>(
      *o.store, o.catalog, domain, *o.keys.sealer);
  return o;
}

// Approves a pending erasure request offline: the approver named on the
// command line (a reviewer or admin other than the requester) is recorded
// as the actor, as over HTTP.
int RunErase(const std::string& data, const std::string& case_id,
             const std::string& erasure_id, const std::string& actor_id,
             const std::string& role_name,
             const caseledger::service::KeyConfig& key_config, bool verbose) {
  auto role = caseledger::domain::ParseRole(role_name);
  if (!role || (*role != caseledger::domain::Role::kReviewer &&
                *role != caseledger::domain::Role::kAdmin)) {
    std::cerr << "caseledger: --role must be reviewer or admin (erasure is "
                 "approved by governance)\n";
    return 2;
  }
  auto o = OpenOffline(data, key_config, {}, verbose);
  if (!o.ok()) return Fail("opening " + data, o.status());
  auto r =
      o->service->Execute(case_id, "approve-erasure",
                          {{"erasure_id", erasure_id}}, {actor_id, *role}, {});
  Status closed = o->store->Close();
  if (!r.ok()) return Fail("erasure " + erasure_id, r.status());
  if (!closed.ok()) return Fail("closing the store", closed);
  std::cout << "erased: request " << erasure_id << " of case " << case_id
            << " approved by " << actor_id << " (event "
            << r->event_ids.at(0).ToString()
            << "); its data keys are destroyed\n";
  return 0;
}

// A subject-access export, printed, and recorded in the case's access log
// as the DSL named (who answers the request).
int RunExport(const std::string& data, const std::string& case_id,
              const std::optional<std::string>& person,
              const std::string& actor_id, const std::string& role_name,
              const caseledger::service::KeyConfig& key_config, bool verbose) {
  auto role = caseledger::domain::ParseRole(role_name);
  if (!role || !caseledger::domain::MayRead(
                   *role, caseledger::domain::Read::kCaseExport)) {
    std::cerr << "caseledger: --role must be dsl or alt_dsl (subject access "
                 "requests are the DSL's to answer)\n";
    return 2;
  }
  auto o = OpenOffline(data, key_config, {}, verbose);
  if (!o.ok()) return Fail("opening " + data, o.status());
  const caseledger::domain::Actor actor{actor_id, *role};
  auto state = o->service->Load(case_id);
  if (state.ok() && !caseledger::domain::CanReadCase(
                        *state, actor, caseledger::domain::Read::kCaseExport)) {
    (void)o->store->Close();
    std::cerr << "caseledger: " << actor_id
              << " may not read this case (barred, or no such case)\n";
    return 2;
  }
  auto out =
      caseledger::service::ExportCase(*o->store, *o->service, case_id, person);
  Status recorded = out.status();
  if (out.ok()) {
    std::promise<Status> done;
    caseledger::service::RecordCaseReads(
        *o->store, *o->catalog, actor,
        caseledger::service::CaseReadKind::kExport,
        {{case_id, (*out)["version"].get<uint64_t>()}},
        [&done](Status s) { done.set_value(std::move(s)); });
    recorded = done.get_future().get();
  }
  Status closed = o->store->Close();
  if (!recorded.ok()) return Fail("export of " + case_id, recorded);
  if (!closed.ok()) return Fail("closing the store", closed);
  std::cout << out->dump(2) << "\n";
  return 0;
}

// The retention sweep, once, with the rules of the configuration file.
int RunRetentionSweep(const std::string& data,
                      const std::optional<std::string>& config_file,
                      bool dry_run,
                      const caseledger::service::KeyConfig& key_config,
                      bool verbose) {
  caseledger::api::ServeConfig config;
  if (config_file) {
    Status s = caseledger::api::ApplyConfigFile(*config_file, &config);
    if (!s.ok()) {
      std::cerr << "caseledger: configuration: " << s.message() << "\n";
      return 2;
    }
  }
  if (config.domain.retention_rules.empty()) {
    std::cerr << "caseledger: no retention rules are configured (retention."
                 "rules in --config FILE): nothing to sweep\n";
    return 2;
  }
  auto o = OpenOffline(data, key_config, config.domain, verbose);
  if (!o.ok()) return Fail("opening " + data, o.status());
  auto key =
      caseledger::service::LoadPseudonymKey(data, config.pseudonym_key_file);
  if (!key.ok()) return Fail("the pseudonym key", key.status());
  auto models = caseledger::projections::ReadModels::Open(
      caseledger::service::ProjectionsDir(data), *o->store, o->catalog,
      o->logger, *key);
  if (!models.ok()) return Fail("opening the read models", models.status());
  Status s = (*models)->CatchUp();
  if (!s.ok()) return Fail("catching the read models up", s);
  auto due = (*models)->RetentionDue(config.domain.retention_rules,
                                     o->store->Now(), 1000000);
  if (!due.ok()) return Fail("listing what is due", due.status());
  std::vector<std::pair<std::string, std::string>> list;
  for (const auto& item : *due) list.emplace_back(item.case_id, item.rule);
  auto report = caseledger::service::SweepRetention(*o->service, list, dry_run);
  if (!report.ok()) return Fail("the retention sweep", report.status());
  // The read models see the erasures before the command ends.
  s = (*models)->CatchUp();
  if (!s.ok()) return Fail("catching the read models up", s);
  models->reset();
  s = o->store->Close();
  if (!s.ok()) return Fail("closing the store", s);
  std::cout << report->dump(2) << "\n";
  return 0;
}

int RunServe(const caseledger::api::ServeConfig& config, bool demo,
             bool follower) {
  auto logger = MakeLogger("caseledger", config.verbose);
  auto app = caseledger::api::App::Open(config, logger,
                                        {.demo = demo, .follower = follower});
  if (!app.ok())
    return Fail("starting the server on " + config.data, app.status());
  if ((*app)->first_run()) PrintFirstRun(*(*app)->first_run(), config.server);
  (*app)->Run();
  Status s = (*app)->Close();
  if (!s.ok()) return Fail("closing the store", s);
  logger->info("stopped cleanly");
  return 0;
}

int RunSeed(const std::string& data, uint64_t cases, uint64_t seed, bool sync,
            const std::optional<std::string>& start,
            const caseledger::service::KeyConfig& key_config, bool verbose) {
  auto logger = MakeLogger("caseledger", verbose);
  auto catalog = caseledger::domain::EventCatalog::Load();
  if (!catalog.ok()) return Fail("loading the event schemas", catalog.status());
  caseledger::service::SeedOptions so;
  // Events are recorded on the seed's simulated clock, not today's.
  caseledger::SettableClock clock;
  so.clock = &clock;
  Options options;
  options.logger = logger;
  options.sync = sync;
  options.clock = clock.Function();
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, data, &store);
  if (!s.ok()) return Fail("opening " + data, s);
  so.cases = cases;
  so.seed = seed;
  if (start) {
    auto t = caseledger::ParseTimestamp(*start);
    if (!t.ok()) return Fail("--start", t.status());
    so.start = *t;
  }
  so.progress = [&](uint64_t done) {
    if (done % 1000 == 0) logger->info("seeded {} of {} cases", done, cases);
  };
  auto keys =
      caseledger::service::OpenDataKeys(data, key_config, *catalog, logger);
  if (!keys.ok()) return Fail("opening the data keys", keys.status());
  auto report = caseledger::service::SeedCases(
      *store, *catalog, caseledger::domain::DomainConfig{}, *keys->sealer, so);
  if (!report.ok()) return Fail("seed", report.status());
  s = store->Close();
  if (!s.ok()) return Fail("closing the store", s);
  std::cout << "seeded " << report->cases << " cases: " << report->events
            << " events (" << report->closed << " closures, "
            << report->reopened << " reopened, " << report->withdrawals
            << " consent withdrawals, " << report->overrides << " overrides, "
            << report->escalations << " escalations, " << report->amendments
            << " amendments, " << report->conflicts_of_interest
            << " conflicts of interest)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "caseledger: an event-sourced case ledger for adult safeguarding"};
  app.require_subcommand(1);
  std::string data = "./data";
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug detail");

  // Where the key-encryption key comes from, for every subcommand that
  // reads or writes personal data.
  caseledger::service::KeyConfig key_config;
  const auto add_key_options = [&key_config](CLI::App* sub) {
    sub->add_option("--kek-file", key_config.kek_file,
                    "The key-encryption key file (mode 0600); else a systemd "
                    "credential caseledger-kek, else CASELEDGER_KEK");
    sub->add_flag("--dev-kek", key_config.dev_kek,
                  "DEVELOPMENT ONLY: keep the KEK inside the data directory "
                  "(made on first use)");
    sub->add_option("--destroyed-keys", key_config.destroyed_list,
                    "The destroyed-keys list (default DATA/keys.destroyed)");
  };

  auto* verify = app.add_subcommand(
      "verify",
      "Recompute the hash chains and indexes; name the first broken link");
  verify->add_option("--data", data, "Store directory")->capture_default_str();
  std::optional<std::string> case_id;
  verify->add_option("--case", case_id, "Verify only this case's chain");
  bool verify_checkpoints = false;
  verify->add_flag("--checkpoints", verify_checkpoints,
                   "Then check the log against every signed checkpoint of "
                   "the replication cluster");
  std::optional<std::string> verify_config, verify_public_key;
  std::vector<std::string> verify_nats;
  verify
      ->add_option("--config", verify_config,
                   "JSON configuration file (its replication section)")
      ->check(CLI::ExistingFile);
  verify->add_option("--nats", verify_nats,
                     "A NATS server of the cluster; repeat for each");
  verify->add_option("--checkpoint-public-key", verify_public_key,
                     "The signing key's public half (64 hex digits)");

  auto* serve = app.add_subcommand(
      "serve",
      "Open (or create) the store and serve the HTTP API. Settings come from "
      "defaults, then --config FILE, then CASELEDGER_* variables, then flags");
  std::optional<std::string> config_file, serve_data, listen, tls_cert, tls_key;
  std::optional<int> threads;
  auto add_serve_options = [&](CLI::App* sub) {
    sub->add_option("--config", config_file, "JSON configuration file")
        ->check(CLI::ExistingFile);
    sub->add_option("--data", serve_data, "Store directory (default ./data)");
    sub->add_option("--listen", listen,
                    "HOST:PORT to listen on (default 127.0.0.1:8080)");
    sub->add_option("--threads", threads, "I/O threads (0: one per core)")
        ->check(CLI::Range(0, 256));
    sub->add_option("--tls-cert", tls_cert,
                    "PEM certificate chain: serve HTTPS (with --tls-key)");
    sub->add_option("--tls-key", tls_key, "PEM private key of --tls-cert");
    add_key_options(sub);
  };
  add_serve_options(serve);
  bool demo = false;
  serve->add_flag("--demo", demo,
                  "On a new store, seed 25 fictional demo cases first");

  auto* follow = app.add_subcommand(
      "follow",
      "Follow a primary through its replication stream: apply its log here "
      "(every record's hashes checked first), build the read models, and "
      "serve the read routes and the learning feed; writes are refused. "
      "Settings as for serve; --nats and --node override the configuration's "
      "replication section");
  add_serve_options(follow);
  // The replication cluster and this node's name in it.
  const auto add_cluster_options = [](CLI::App* sub,
                                      std::vector<std::string>* nats,
                                      std::optional<std::string>* node) {
    sub->add_option("--nats", *nats,
                    "A NATS server of the cluster (nats://HOST:PORT); "
                    "repeat for each");
    sub->add_option("--node", *node,
                    "This node's name in the cluster (a follower's names "
                    "its durable consumer)");
  };
  std::vector<std::string> follow_nats;
  std::optional<std::string> follow_node, follow_primary;
  add_cluster_options(follow, &follow_nats, &follow_node);
  follow->add_option("--primary", follow_primary,
                     "The primary's URL, named when a write is refused");
  std::optional<std::string> follow_public_key;
  follow->add_option("--checkpoint-public-key", follow_public_key,
                     "The primary's signing key's public half: the log is "
                     "checked against every signed checkpoint");

  auto* promote = app.add_subcommand(
      "promote",
      "Make this follower the primary (its server stopped): apply the "
      "stream to its end, claim the next epoch in the cluster, and fence "
      "the replaced primary out of the stream. Then serve it");
  promote->add_option("--data", data, "Store directory")->capture_default_str();
  std::optional<std::string> promote_config;
  promote
      ->add_option("--config", promote_config,
                   "JSON configuration file (its replication section)")
      ->check(CLI::ExistingFile);
  std::vector<std::string> promote_nats;
  std::optional<std::string> promote_node;
  add_cluster_options(promote, &promote_nats, &promote_node);
  int promote_wait = 300;
  promote
      ->add_option("--catch-up-seconds", promote_wait,
                   "How long applying the stream may take")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  add_key_options(promote);

  auto* seed = app.add_subcommand(
      "seed",
      "Write synthetic, realistic case lifecycles (fictional people) "
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
  std::optional<std::string> seed_start;
  seed->add_option("--start", seed_start,
                   "When the first case is reported (RFC 3339; default "
                   "2026-01-05T09:00:00Z)");
  add_key_options(seed);

  auto* token = app.add_subcommand("token", "Manage bearer tokens");
  token->require_subcommand(1);
  auto* token_create = token->add_subcommand(
      "create", "Issue a token; it is printed once and only its hash is kept");
  token_create->add_option("--data", data, "Store directory")
      ->capture_default_str();
  std::string token_actor, token_role;
  token_create->add_option("--actor", token_actor, "Actor id")->required();
  token_create
      ->add_option("--role", token_role,
                   "reporter, dsl, alt_dsl, reviewer, integration "
                   "or admin")
      ->required();
  bool token_init = false;
  token_create->add_flag("--init", token_init,
                         "Make a new, empty store in --data if there is none");

  auto* token_revoke = token->add_subcommand(
      "revoke",
      "Revoke a token, or every token of an actor, on the log (with the "
      "server stopped; a running server takes POST /v1/admin/tokens/revoke)");
  token_revoke->add_option("--data", data, "Store directory")
      ->capture_default_str();
  std::string revoke_token, revoke_actor;
  auto* revoke_token_opt =
      token_revoke->add_option("--token", revoke_token, "The token to revoke");
  auto* revoke_actor_opt = token_revoke->add_option(
      "--actor", revoke_actor, "Revoke every live token of this actor");
  revoke_token_opt->excludes(revoke_actor_opt);

  auto* replay = app.add_subcommand(
      "replay",
      "Show a case as it stood after a version or at a time, or "
      "step through its events (computed from the log)");
  replay->add_option("--data", data, "Store directory")->capture_default_str();
  std::string replay_case;
  replay->add_option("case", replay_case, "Case id")->required();
  std::optional<uint64_t> replay_at;
  std::optional<std::string> replay_until;
  auto* at_opt = replay->add_option("--at", replay_at, "After this version");
  replay
      ->add_option("--until", replay_until,
                   "As recorded at this time (RFC 3339)")
      ->excludes(at_opt);
  bool replay_steps = false;
  replay->add_flag("--steps", replay_steps,
                   "Each event with who, when, why, the state after it and "
                   "what changed");
  add_key_options(replay);

  auto* rebuild = app.add_subcommand(
      "rebuild",
      "Rebuild the read models from the log into fresh column "
      "families and swap them in (server stopped)");
  rebuild->add_option("--data", data, "Store directory")->capture_default_str();

  auto* backup = app.add_subcommand(
      "backup",
      "Write a consistent copy of the store (and its pseudonym key file) "
      "into a new directory (server stopped; while serving, POST "
      "/v1/admin/backups)");
  backup->add_option("--data", data, "Store directory")->capture_default_str();
  std::string backup_to, backup_key_file;
  backup->add_option("--to", backup_to,
                     "Directory to make the backup in (default: DATA-backups)");
  backup->add_option("--pseudonym-key-file", backup_key_file,
                     "The pseudonym key file, if not DATA/pseudonym.key");
  add_key_options(backup);

  auto* restore = app.add_subcommand(
      "restore",
      "Restore a backup as the store in a new (or empty) directory: the copy "
      "is verified whole before it is put in place; a broken backup is "
      "refused");
  std::string restore_from;
  restore->add_option("--from", restore_from, "The backup's directory")
      ->required();
  restore->add_option("--data", data, "The new store's directory")
      ->capture_default_str();
  add_key_options(restore);
  std::vector<std::string> restore_lists;
  restore->add_option("--apply-destroyed", restore_lists,
                      "A destroyed-keys list kept outside the backup (the old "
                      "store's); every key it names is destroyed in the "
                      "restored copy (repeatable)");

  auto* keys_cmd = app.add_subcommand("keys", "Manage the encryption keys");
  keys_cmd->require_subcommand(1);
  auto* new_kek = keys_cmd->add_subcommand(
      "new-kek", "Make a new key-encryption key file (mode 0600)");
  std::string new_kek_file;
  new_kek->add_option("file", new_kek_file, "Where to write it")->required();
  auto* new_signing_key = keys_cmd->add_subcommand(
      "new-signing-key",
      "Make a new Ed25519 key file (mode 0600) for signing the replicated "
      "log's head; prints its public half for followers");
  std::string new_signing_key_file;
  new_signing_key->add_option("file", new_signing_key_file, "Where to write it")
      ->required();
  auto* rotate = keys_cmd->add_subcommand(
      "rotate",
      "Re-wrap every data key under a new KEK, without rewriting any event "
      "(server stopped); a rotation cut short is finished by running it "
      "again");
  rotate->add_option("--data", data, "Store directory")->capture_default_str();
  std::string rotate_to;
  rotate->add_option("--new-kek", rotate_to, "The new KEK file")->required();
  add_key_options(rotate);

  auto* erase = app.add_subcommand(
      "erase",
      "Approve a pending erasure request and destroy its data keys (server "
      "stopped; while serving, POST .../commands/approve-erasure). "
      "Irreversible");
  erase->add_option("--data", data, "Store directory")->capture_default_str();
  std::string erase_case, erase_id, erase_actor, erase_role;
  erase->add_option("--case", erase_case, "The case")->required();
  erase->add_option("--erasure", erase_id, "The request's erasure_id")
      ->required();
  erase
      ->add_option("--actor", erase_actor,
                   "The approver's actor id (not the requester)")
      ->required();
  erase->add_option("--role", erase_role, "The approver's role")
      ->check(CLI::IsMember({"reviewer", "admin"}))
      ->required();
  add_key_options(erase);

  auto* export_cmd = app.add_subcommand(
      "export",
      "Print everything held about a case, or one person of it, for a "
      "subject access request (recorded in the case's access log)");
  export_cmd->add_option("--data", data, "Store directory")
      ->capture_default_str();
  std::string export_case, export_actor, export_role;
  std::optional<std::string> export_person;
  export_cmd->add_option("--case", export_case, "The case")->required();
  export_cmd->add_option("--person", export_person,
                         "Only what names this person_ref");
  export_cmd
      ->add_option("--actor", export_actor,
                   "Who answers the request (the access log names them)")
      ->required();
  export_cmd->add_option("--role", export_role, "Their role")
      ->check(CLI::IsMember({"dsl", "alt_dsl"}))
      ->required();
  add_key_options(export_cmd);

  auto* retention =
      app.add_subcommand("retention", "Retention of personal data");
  retention->require_subcommand(1);
  auto* sweep = retention->add_subcommand(
      "sweep",
      "Erase every closed case (not on legal hold) whose retention period "
      "has ended, under the rules of --config (server stopped; the server "
      "runs it daily)");
  sweep->add_option("--data", data, "Store directory")->capture_default_str();
  std::optional<std::string> sweep_config;
  sweep
      ->add_option("--config", sweep_config,
                   "The configuration file holding retention.rules")
      ->check(CLI::ExistingFile);
  bool sweep_dry_run = false;
  sweep->add_flag("--dry-run", sweep_dry_run,
                  "List what is due; erase nothing");
  add_key_options(sweep);

  CLI11_PARSE(app, argc, argv);

  if (verify->parsed()) {
    std::optional<caseledger::replicate::ReplicationConfig> checkpoints;
    if (verify_checkpoints) {
      caseledger::api::ServeConfig config;
      if (verify_config) {
        Status s = caseledger::api::ApplyConfigFile(*verify_config, &config);
        if (!s.ok()) {
          std::cerr << "caseledger: configuration: " << s.message() << "\n";
          return 2;
        }
      }
      checkpoints = config.replication.nats;
      if (!verify_nats.empty()) checkpoints->servers = verify_nats;
      if (verify_public_key) {
        checkpoints->checkpoint_public_key = *verify_public_key;
      }
      if (checkpoints->node.empty()) checkpoints->node = "verify";
      Status s = caseledger::replicate::CheckConfig(*checkpoints);
      if (s.ok() && checkpoints->checkpoint_public_key.empty()) {
        s = Status::InvalidArgument(
            "--checkpoints needs --checkpoint-public-key (or "
            "replication.checkpoint_public_key in --config)");
      }
      if (!s.ok()) {
        std::cerr << "caseledger: configuration: " << s.message() << "\n";
        return 2;
      }
    }
    return RunVerify(data, case_id, checkpoints, verbose);
  }
  if (serve->parsed() || follow->parsed()) {
    caseledger::api::ServeConfig config;
    Status s = Status::OK();
    if (config_file)
      s = caseledger::api::ApplyConfigFile(*config_file, &config);
    if (s.ok()) {
      s = caseledger::api::ApplyEnvironment(
          // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets it
          [](const char* name) { return std::getenv(name); }, &config);
    }
    if (s.ok() && listen)
      s = caseledger::api::ApplyListen(*listen, &config.server);
    if (serve_data) config.data = *serve_data;
    if (threads) config.server.threads = *threads;
    if (tls_cert) config.server.tls_certificate_file = *tls_cert;
    if (tls_key) config.server.tls_private_key_file = *tls_key;
    if (!key_config.kek_file.empty()) config.kek_file = key_config.kek_file;
    if (!key_config.destroyed_list.empty()) {
      config.destroyed_keys_file = key_config.destroyed_list;
    }
    config.dev_kek = key_config.dev_kek;
    config.verbose = config.verbose || verbose;
    if (follow->parsed()) {
      auto& r = config.replication;
      if (!follow_nats.empty()) r.nats.servers = follow_nats;
      if (follow_node) r.nats.node = *follow_node;
      if (follow_primary) r.primary_url = *follow_primary;
      if (follow_public_key) r.nats.checkpoint_public_key = *follow_public_key;
      r.enabled = true;
      if (s.ok()) s = caseledger::replicate::CheckConfig(r.nats);
    }
    if (s.ok()) s = caseledger::api::CheckConfig(config);
    if (!s.ok()) {
      std::cerr << "caseledger: configuration: " << s.message() << "\n";
      return 2;
    }
    return RunServe(config, demo, follow->parsed());
  }
  if (promote->parsed()) {
    caseledger::api::ServeConfig config;
    if (promote_config) {
      Status s = caseledger::api::ApplyConfigFile(*promote_config, &config);
      if (!s.ok()) {
        std::cerr << "caseledger: configuration: " << s.message() << "\n";
        return 2;
      }
    }
    auto& r = config.replication.nats;
    if (!promote_nats.empty()) r.servers = promote_nats;
    if (promote_node) r.node = *promote_node;
    return RunPromote(data, r, promote_wait, key_config, verbose);
  }
  if (rebuild->parsed()) return RunRebuild(data, verbose);
  if (backup->parsed()) {
    return RunBackup(data, backup_to, backup_key_file, key_config, verbose);
  }
  if (restore->parsed()) {
    return RunRestore(restore_from, data, restore_lists, key_config, verbose);
  }
  if (erase->parsed()) {
    return RunErase(data, erase_case, erase_id, erase_actor, erase_role,
                    key_config, verbose);
  }
  if (export_cmd->parsed()) {
    return RunExport(data, export_case, export_person, export_actor,
                     export_role, key_config, verbose);
  }
  if (sweep->parsed()) {
    return RunRetentionSweep(data, sweep_config, sweep_dry_run, key_config,
                             verbose);
  }
  if (new_kek->parsed()) return RunNewKek(new_kek_file);
  if (new_signing_key->parsed()) {
    auto public_key =
        caseledger::replicate::CreateSigningKey(new_signing_key_file);
    if (!public_key.ok()) {
      return Fail("making a signing key", public_key.status());
    }
    std::cout << "made signing key " << new_signing_key_file
              << " (mode 0600); keep it off the data volume. Its public key, "
                 "for followers' replication.checkpoint_public_key and "
                 "`verify --checkpoints`:\n"
              << *public_key << "\n";
    return 0;
  }
  if (rotate->parsed()) return RunRotate(data, rotate_to, key_config, verbose);
  if (replay->parsed()) {
    return RunReplay(data, replay_case, replay_at, replay_until, replay_steps,
                     key_config, verbose);
  }
  if (token_create->parsed()) {
    return RunTokenCreate(data, token_actor, token_role, token_init, verbose);
  }
  if (token_revoke->parsed()) {
    return RunTokenRevoke(data, revoke_token, revoke_actor, verbose);
  }
  if (seed->parsed()) {
    return RunSeed(data, seed_cases, seed_value, seed_sync, seed_start,
                   key_config, verbose);
  }
  return 0;
}

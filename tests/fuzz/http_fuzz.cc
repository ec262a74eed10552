// The HTTP request path without sockets: raw bytes through the server's
// parser, limits and header checks (AnswerRaw), then the real routes on a
// real store. Every request gets an answer with a sane status, problem+json
// for every refusal, and a refused request writes nothing.
//
// So that the fuzzer reaches past authentication, "@dsl@", "@alt@",
// "@reviewer@", "@reporter@", "@integration@" and "@admin@" in the input
// become those roles' bearer tokens, and "@case@" the id of a case that
// exists.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "api/case_routes.h"
#include "api/handlers.h"
#include "api/server.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/service/operations.h"

namespace {

using namespace caseledger;

struct Service {
  std::unique_ptr<EventStore> store;
  service::DataKeys keys;
  std::unique_ptr<service::CaseService> service;
  std::unique_ptr<api::TokenRegistry> tokens;
  std::unique_ptr<api::WorkerPool> workers;
  std::unique_ptr<projections::ReadModels> models;
  std::unique_ptr<api::CaseRouteDeps> deps;
  api::Router router;
  api::HttpMetrics metrics;
  api::ServerOptions options;
  std::map<std::string, std::string> placeholders;
};

void Require(const Status& s) {
  if (s.ok()) return;
  std::fprintf(stderr, "http_fuzz: cannot start: %s\n", s.ToString().c_str());
  __builtin_trap();  // the harness itself failed to start
}

Service* Start() {
  auto* s = new Service;
  const std::string dir =
      (std::filesystem::temp_directory_path() /
       ("caseledger-http-fuzz-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // The store stays open until the process ends; its files go then.
  static std::string to_remove;
  to_remove = dir;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(to_remove, ec);
  });
  Options o;
  o.sync = false;
  Require(EventStore::Open(o, dir + "/log", &s->store));
  auto catalog = domain::EventCatalog::Load();
  Require(catalog.status());
  // Sealed as the server seals (a development KEK in the fuzz directory).
  service::KeyConfig kc;
  kc.dev_kek = true;
  auto keys = service::OpenDataKeys(dir, kc, *catalog, nullptr);
  Require(keys.status());
  s->keys = std::move(*keys);
  s->service = std::make_unique<service::CaseService>(
      *s->store, *catalog, domain::DomainConfig{}, *s->keys.sealer);
  using domain::Role;
  for (const auto& [name, role] : std::vector<std::pair<std::string, Role>>{
           {"dsl", Role::kDsl},
           {"alt", Role::kAltDsl},
           {"reviewer", Role::kReviewer},
           {"reporter", Role::kReporter},
           {"integration", Role::kIntegration},
           {"admin", Role::kAdmin}}) {
    auto t = service::IssueToken(*s->store, **catalog,
                                 {"user:" + name + "-1", role}, "fuzz");
    Require(t.status());
    s->placeholders["@" + name + "@"] = *t;
  }
  s->tokens = std::make_unique<api::TokenRegistry>(*s->store);
  Require(s->tokens->Refresh());
  std::ifstream in(std::string(CASELEDGER_SOURCE_DIR) +
                   "/scripts/examples/report.json");
  auto reported =
      s->service->Execute("case-fuzz-1", "report", nlohmann::json::parse(in),
                          {"user:reporter-1", Role::kReporter});
  Require(reported.status());
  s->placeholders["@case@"] = "case-fuzz-1";
  s->workers = std::make_unique<api::WorkerPool>(1);
  auto models =
      projections::ReadModels::Open(dir + "/projections", *s->store, *catalog,
                                    nullptr, "fuzz-pseudonym-key-0123456789");
  Require(models.status());
  s->models = std::move(*models);
  s->models->SetIdentifierOpener(
      [sealer = s->keys.sealer.get()](const std::string& case_id,
                                      const std::set<std::string>& sealed,
                                      service::Identifiers* out) {
        return service::OpenSealedIdentifiers(*sealer, case_id, sealed, out);
      });
  s->models->Start();
  auto quiet = std::make_shared<spdlog::logger>(
      "fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
  s->deps = std::make_unique<api::CaseRouteDeps>(api::CaseRouteDeps{
      *s->store, *s->service, *s->tokens, *s->workers, s->models.get(), quiet});
  s->deps->feed_release_delay_months = 0;
  s->deps->backup = nullptr;  // no directories made by fuzz input
  api::AddOperationalRoutes(s->router, *s->store, s->metrics, s->models.get());
  api::AddCaseRoutes(s->router, *s->deps);
  s->router.SetLogger(quiet);
  s->options.max_body_bytes = 64u << 10;
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Service* s = Start();
  if (size > (128u << 10)) return 0;
  std::string raw(reinterpret_cast<const char*>(data), size);
  for (const auto& [from, to] : s->placeholders) {
    for (size_t at = raw.find(from); at != std::string::npos;
         at = raw.find(from, at + to.size())) {
      raw.replace(at, from.size(), to);
    }
  }
  const uint64_t before = s->store->committed_position().value();
  api::HttpResponse r = api::AnswerRaw(raw, s->router, s->options);
  if (r.status < 200 || r.status > 599) __builtin_trap();
  if (r.status >= 400) {
    if (r.content_type != "application/problem+json") __builtin_trap();
    // Refused: nothing written (a 5xx may come after a durable write's
    // answer was lost, but none is expected here).
    if (s->store->committed_position().value() != before) __builtin_trap();
  }
  return 0;
}

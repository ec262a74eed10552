#include "api/app.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "api/auth.h"
#include "api/case_routes.h"
#include "api/handlers.h"
#include "api/router.h"
#include "api/server.h"
#include "api/worker_pool.h"
#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/mutex.h"
#include "caseledger/notify/notifier.h"
#include "caseledger/projections/read_models.h"
#include "caseledger/replicate/replication.h"
#include "caseledger/service/access.h"
#include "caseledger/service/anonymise.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"

namespace caseledger::api {
namespace {

constexpr int64_t kDay = int64_t{24} * 3600 * 1000000;

// What a follower answers a write.
HttpResponse FollowerRefusal(const std::string& primary) {
  nlohmann::json body = {
      {"type", "about:blank"},
      {"title", "Read-Only Follower"},
      {"status", 503},
      {"detail",
       "this node follows the replication stream and serves reads only; "
       "send writes to the primary" +
           (primary.empty() ? std::string() : " at " + primary)}};
  if (!primary.empty()) body["primary"] = primary;
  HttpResponse r;
  r.status = 503;
  r.content_type = "application/problem+json";
  r.body = body.dump();
  return r;
}

class AppImpl final : public App {
 public:
  AppImpl(const ServeConfig& config, std::shared_ptr<spdlog::logger> logger)
      : config_(config), logger_(std::move(logger)) {}
  ~AppImpl() override { (void)Close(); }

  Status Open(const Options& options) {
    follower_mode_ = options.follower;
    if (follower_mode_ && !config_.replication.enabled) {
      return Status::InvalidArgument(
          "a follower needs the replication cluster: configure "
          "replication.servers and replication.node");
    }
    ASSIGN_OR_RETURN(catalog_, domain::EventCatalog::Load());
    // The data keys first: without a KEK nothing is opened or made, and
    // every personal field is sealed with them.
    service::KeyConfig key_config;
    key_config.kek_file = config_.kek_file;
    key_config.dev_kek = config_.dev_kek;
    key_config.destroyed_list = config_.destroyed_keys_file;
    ASSIGN_OR_RETURN(keys_, service::OpenDataKeys(config_.data, key_config,
                                                  catalog_, logger_));
    // The system clock, except while demo seeding replays weeks of
    // simulated time through it.
    caseledger::Options store_options;
    store_options.logger = logger_;
    store_options.clock = clock_.Function();
    store_options.replica = follower_mode_;
    RETURN_IF_ERROR(EventStore::Open(store_options, config_.data, &store_));
    // An erasure whose event is in the log but whose keys a crash kept:
    // finished before anything is read (a follower plans the erasures it
    // applies, too).
    RETURN_IF_ERROR(
        service::FinishPlannedErasures(*store_, *keys_.store, logger_.get())
            .status());

    tokens_ = std::make_unique<TokenRegistry>(*store_);
    RETURN_IF_ERROR(tokens_->Refresh());
    if (!follower_mode_) RETURN_IF_ERROR(IssueFirstTokens(options));

    service_ = std::make_unique<service::CaseService>(
        *store_, catalog_, config_.domain, *keys_.sealer);
    ASSIGN_OR_RETURN(
        std::string key,
        service::LoadPseudonymKey(config_.data, config_.pseudonym_key_file));
    ASSIGN_OR_RETURN(models_, projections::ReadModels::Open(
                                  service::ProjectionsDir(config_.data),
                                  *store_, catalog_, logger_, key));
    models_->SetIdentifierOpener(
        [sealer = keys_.sealer.get()](const std::string& case_id,
                                      const std::set<std::string>& sealed,
                                      service::Identifiers* out) {
          return service::OpenSealedIdentifiers(*sealer, case_id, sealed, out);
        });
    models_->Start();
    if (config_.replication.enabled) {
      // The data keys travel with the log (wrapped by the KEK, which a
      // follower must share), and erasures destroy them on every node.
      replicate::KeyReplication key_replication{keys_.store.get(),
                                                service::ErasedKeyScopeOf};
      if (follower_mode_) {
        ASSIGN_OR_RETURN(follower_, replicate::Follower::Start(
                                        *store_, config_.replication.nats,
                                        config_.data + "/replica.checkpoint",
                                        std::move(key_replication)));
        ASSIGN_OR_RETURN(forwarder_,
                         replicate::Forwarder::Start(config_.replication.nats));
      } else {
        ASSIGN_OR_RETURN(publisher_, replicate::Publisher::Start(
                                         *store_, config_.replication.nats,
                                         std::move(key_replication)));
        // Followers' read records, checked and written to this log.
        ASSIGN_OR_RETURN(
            intake_,
            replicate::Intake::Start(
                config_.replication.nats,
                [this](replicate::ForwardedEvent f,
                       std::function<void(Status)> done) {
                  if (!publisher_ || !publisher_->HoldsEpoch()) {
                    done(Status::Unavailable("this node is not the primary"));
                    return;
                  }
                  service::ReadRecord r{std::move(f.stream_id),
                                        std::move(f.event)};
                  Status ok = service::CheckForwardedRead(*catalog_, r);
                  if (!ok.ok()) {
                    done(ok);
                    return;
                  }
                  std::vector<service::ReadRecord> one;
                  one.push_back(std::move(r));
                  service::AppendReadRecords(*store_, std::move(one),
                                             std::move(done));
                }));
      }
    }
    if (config_.notify.enabled && !follower_mode_) {
      ASSIGN_OR_RETURN(notifier_, notify::Notifier::Open(
                                      notify::NotifyDir(config_.data), *store_,
                                      catalog_, config_.notify, logger_));
      notifier_->Start();
    }
    // Commands wait for an fsync; they run here, never on the I/O threads.
    workers_ = std::make_unique<WorkerPool>(config_.workers, logger_);
    router_.SetLogger(logger_);
    AddOperationalRoutes(router_, *store_, metrics_, models_.get(),
                         notifier_.get(),
                         ReplicationView{publisher_.get(), follower_.get()});
    router_.SetWriteHooks(WriteHooks());
    deps_ = std::make_unique<CaseRouteDeps>(CaseRouteDeps{
        *store_, *service_, *tokens_, *workers_, models_.get(), logger_});
    deps_->max_json_depth = config_.max_json_depth;
    deps_->command_budget = config_.command_budget;
    deps_->summary = config_.summary;
    deps_->feed_release_delay_months = config_.feed_release_delay_months;
    sessions_ = std::make_unique<SessionStore>(
        *tokens_,
        std::chrono::duration_cast<std::chrono::seconds>(config_.session_idle));
    deps_->sessions = sessions_.get();
    deps_->tls = !config_.server.tls_certificate_file.empty();
    deps_->notifier = notifier_.get();
    if (forwarder_) {
      deps_->forward_reads = [this](std::vector<service::ReadRecord> records,
                                    std::function<void(Status)> done) {
        std::vector<replicate::ForwardedEvent> events;
        events.reserve(records.size());
        for (service::ReadRecord& r : records) {
          events.push_back(replicate::ForwardedEvent{std::move(r.stream_id),
                                                     std::move(r.event)});
        }
        forwarder_->Forward(std::move(events), std::move(done));
      };
    }
    deps_->backup =
        [this, root = service::BackupRoot(config_.data, config_.backup_dir)] {
          return service::BackUp(*store_, *keys_.store, config_.data,
                                 config_.pseudonym_key_file, root);
        };
    AddCaseRoutes(router_, *deps_);
    AddConsoleRoutes(router_);
    if (!follower_mode_) StartRetentionSweeps();
    ASSIGN_OR_RETURN(
        server_, Server::Create(config_.server, router_, metrics_, logger_));
    logger_->info(
        "serving {} on {}://{}:{} (log at position {})", config_.data,
        config_.server.tls_certificate_file.empty() ? "http" : "https",
        config_.server.host, server_->port(),
        store_->committed_position().value());
    return Status::OK();
  }

  const std::optional<FirstRun>& first_run() const override {
    return first_run_;
  }
  uint16_t port() const override { return server_->port(); }
  void Run() override { server_->Run(/*handle_signals=*/true); }

  Status Close() override {
    if (store_ == nullptr) return Status::OK();
    StopRetentionSweeps();
    server_.reset();
    if (workers_) workers_->Stop();  // commands in flight finish first
    if (notifier_) notifier_->Stop();
    notifier_.reset();
    intake_.reset();
    publisher_.reset();  // a write still waiting for the quorum gets 503
    forwarder_.reset();  // a read still being recorded gets 503
    follower_.reset();
    if (models_) models_->Stop();
    models_.reset();
    service_.reset();
    Status s = store_->Close();
    store_.reset();
    keys_ = {};
    return s;
  }

 private:
  // A follower refuses writes (signing in to read excepted), naming the
  // primary; a primary in quorum mode answers a write only once the stream
  // has stored everything committed when it was done.
  Router::WriteHooks WriteHooks() {
    Router::WriteHooks hooks;
    if (follower_mode_) {
      const std::string primary = config_.replication.primary_url;
      hooks.admit =
          [primary](const HttpRequest&,
                    const std::string& pattern) -> std::optional<HttpResponse> {
        if (pattern == "/v1/session") return std::nullopt;
        return FollowerRefusal(primary);
      };
    }
    if (publisher_) {
      // A primary takes writes only while it holds the primary's epoch:
      // not before the cluster confirmed it, nor after another node was
      // promoted in its place.
      hooks.admit =
          [this](const HttpRequest&,
                 const std::string& pattern) -> std::optional<HttpResponse> {
        if (pattern == "/v1/session" || publisher_->HoldsEpoch()) {
          return std::nullopt;
        }
        const Status why = publisher_->Health();
        HttpResponse r =
            Problem(503, "Not The Primary",
                    why.IsFailedPrecondition()
                        ? why.message()
                        : "this node has not yet confirmed with the "
                          "replication cluster that it is still the "
                          "primary; retry shortly");
        r.headers.emplace_back("Retry-After", "5");
        return r;
      };
    }
    if (publisher_ && config_.replication.quorum) {
      hooks.settle = [this](HttpResponse resp, Router::Respond respond) {
        publisher_->WhenStored(
            store_->committed_position(), config_.replication.quorum_wait,
            [resp = std::move(resp),
             respond = std::move(respond)](bool stored) mutable {
              if (stored) {
                respond(std::move(resp));
                return;
              }
              HttpResponse r = Problem(
                  503, "Not Yet Replicated",
                  "the write is in this node's log, but the replication "
                  "cluster has not stored it on a quorum of its servers "
                  "yet; retry it with the same Idempotency-Key, which is "
                  "answered from the log once it is replicated");
              r.headers.emplace_back("Retry-After", "5");
              respond(std::move(r));
            });
      };
    }
    return hooks;
  }

  // The retention sweep, on a thread of its own: once the read models have
  // caught up after start, then every configured interval. Nothing without
  // retention rules.
  void StartRetentionSweeps() {
    if (config_.domain.retention_rules.empty()) return;
    sweeper_ = std::thread([this] {
      auto next = std::chrono::steady_clock::now();
      MutexLock lk(&sweep_mu_);
      while (!stopping_) {
        if (std::chrono::steady_clock::now() < next) {
          sweep_cv_.WaitUntil(&sweep_mu_, next);
          continue;
        }
        lk.Unlock();
        SweepOnce();
        lk.Lock();
        next =
            std::chrono::steady_clock::now() + config_.retention_sweep_interval;
      }
    });
  }

  void StopRetentionSweeps() {
    {
      MutexLock lk(&sweep_mu_);
      stopping_ = true;
    }
    sweep_cv_.SignalAll();
    if (sweeper_.joinable()) sweeper_.join();
  }

  bool Stopping() {
    MutexLock lk(&sweep_mu_);
    return stopping_;
  }

  void SweepOnce() {
    // The list comes from the read models; each erasure is decided on the
    // log, so a lagging model only delays one. Waited for in short steps,
    // and the sweep stops between cases, so that a shutdown never waits
    // for a rebuild or a long backlog.
    const GlobalPosition head = store_->committed_position();
    for (int i = 0; i < 600 && !Stopping(); ++i) {
      if (models_->WaitFor(head, std::chrono::seconds(1))) break;
    }
    if (Stopping()) return;
    auto due = models_->RetentionDue(config_.domain.retention_rules,
                                     store_->Now(), 100000);
    if (!due.ok()) {
      logger_->error("retention sweep: {}", due.status().ToString());
      return;
    }
    std::vector<std::pair<std::string, std::string>> list;
    for (const auto& item : *due) list.emplace_back(item.case_id, item.rule);
    auto report = service::SweepRetention(*service_, list, false,
                                          [this] { return Stopping(); });
    if (!report.ok()) {
      logger_->error("retention sweep: {}", report.status().ToString());
      return;
    }
    logger_->info("retention sweep: {} due, {} erased, {} refused",
                  (*report)["due"].get<size_t>(),
                  (*report)["erased"].get<size_t>(),
                  (*report)["refused"].get<size_t>());
  }

  // On a store with no tokens yet: a first admin and DSL token, and the
  // demo cases if asked for.
  Status IssueFirstTokens(const Options& options) {
    ASSIGN_OR_RETURN(StreamVersion version,
                     store_->GetStreamVersion(service::kTokenStream));
    if (version.value() != 0) return Status::OK();
    FirstRun first;
    ASSIGN_OR_RETURN(
        first.admin_token,
        service::IssueToken(*store_, *catalog_,
                            domain::Actor{"admin-1", domain::Role::kAdmin},
                            "caseledger-serve"));
    ASSIGN_OR_RETURN(
        first.dsl_token,
        service::IssueToken(*store_, *catalog_,
                            domain::Actor{"dsl-1", domain::Role::kDsl},
                            "caseledger-serve"));
    if (options.demo) {
      service::SeedOptions so;
      so.cases = 25;
      so.case_prefix = "demo-";
      so.start = Timestamp(NowUtc().value() - 90 * kDay);
      so.clock = &clock_;
      auto seeded = service::SeedCases(*store_, catalog_, config_.domain,
                                       *keys_.sealer, so);
      clock_.Reset();
      if (!seeded.ok()) {
        logger_->error("seeding demo cases: {}", seeded.status().ToString());
        return seeded.status();
      }
      first.demo = *seeded;
    }
    first_run_ = std::move(first);
    return Status::OK();
  }

  const ServeConfig config_;
  std::shared_ptr<spdlog::logger> logger_;
  SettableClock clock_;  // the store's
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::unique_ptr<EventStore> store_;
  service::DataKeys keys_;  // outlives the service, which seals with it
  std::unique_ptr<TokenRegistry> tokens_;
  std::optional<FirstRun> first_run_;
  std::unique_ptr<service::CaseService> service_;
  std::unique_ptr<projections::ReadModels> models_;
  std::unique_ptr<notify::Notifier> notifier_;
  bool follower_mode_ = false;
  std::unique_ptr<replicate::Publisher> publisher_;  // a primary's
  std::unique_ptr<replicate::Intake> intake_;        // a primary's
  std::unique_ptr<replicate::Follower> follower_;    // a follower's
  std::unique_ptr<replicate::Forwarder> forwarder_;  // a follower's
  std::unique_ptr<WorkerPool> workers_;
  HttpMetrics metrics_;
  Router router_;
  std::unique_ptr<SessionStore> sessions_;
  std::unique_ptr<CaseRouteDeps> deps_;
  std::unique_ptr<Server> server_;
  Mutex sweep_mu_;
  CondVar sweep_cv_;
  bool stopping_ GUARDED_BY(sweep_mu_) = false;
  std::thread sweeper_;
};

}  // namespace

StatusOr<std::unique_ptr<App>> App::Open(const ServeConfig& config,
                                         std::shared_ptr<spdlog::logger> logger,
                                         Options options) {
  auto app = std::make_unique<AppImpl>(config, std::move(logger));
  RETURN_IF_ERROR(app->Open(options));
  return std::unique_ptr<App>(std::move(app));
}

}  // namespace caseledger::api

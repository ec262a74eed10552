#include "caseledger/notify/notifier.h"

#include <fmt/format.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "caseledger/mutex.h"
#include "caseledger/service/case_service.h"
#include "notify/src/outbox.h"
#include "notify/src/transport.h"

namespace caseledger::notify {
namespace {

using internal::Attempt;
using internal::Outbox;
using internal::Record;

constexpr size_t kBatch = 256;
constexpr size_t kCachedCases = 4096;

std::string NotificationId(const Notice& n, const std::string& channel) {
  std::string seed = n.source;
  for (const std::string* part : {&n.rule, &n.recipient.id, &channel}) {
    seed += '\x1f';
    seed += *part;
  }
  return "msg_" + Sha256Hex(seed).substr(0, 32);
}

bool HasLineBreak(const std::string& s) {
  return s.find_first_of("\r\n") != std::string::npos;
}

bool ValidAddress(const std::string& s) {
  const size_t at = s.find('@');
  return at != std::string::npos && at > 0 && at + 1 < s.size() &&
         s.find_first_of(" \t\r\n<>,;\"") == std::string::npos;
}

Timestamp PlusMillis(Timestamp t, int64_t ms) {
  return Timestamp(t.value() + ms * 1000);
}

class NotifierImpl final : public Notifier {
 public:
  NotifierImpl(const EventStore& store,
               std::shared_ptr<const domain::EventCatalog> catalog,
               NotifyConfig config, std::shared_ptr<spdlog::logger> logger,
               NotifierOptions options)
      : store_(store),
        catalog_(std::move(catalog)),
        config_(std::move(config)),
        logger_(std::move(logger)),
        options_(std::move(options)) {
    if (!logger_) {
      logger_ = std::make_shared<spdlog::logger>(
          "caseledger.notify", std::make_shared<spdlog::sinks::null_sink_mt>());
    }
    if (!options_.clock) options_.clock = [] { return NowUtc(); };
  }

  ~NotifierImpl() override { Stop(); }

  Status Init(const std::string& dir) {
    RETURN_IF_ERROR(CheckConfig(config_));
    if (config_.smtp) {
      ASSIGN_OR_RETURN(smtp_password_,
                       internal::ReadSecretFile(config_.smtp->password_file));
    }
    if (config_.smtp)
      lanes_.push_back(std::make_unique<Lane>(Lane{"smtp", {}, {}, nullptr}));
    for (const auto& [name, endpoint] : config_.webhooks) {
      internal::WebhookTarget target{endpoint.url, "", endpoint.ca_file};
      ASSIGN_OR_RETURN(target.key,
                       internal::ReadWebhookSecret(endpoint.secret_file));
      lanes_.push_back(
          std::make_unique<Lane>(Lane{"webhook:" + name, target, {}, nullptr}));
    }
    internal::InitCurl();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    ASSIGN_OR_RETURN(outbox_, Outbox::Open(dir, logger_));
    return DeadLetterOrphans();
  }

  // Queued for a receiver no longer configured (an endpoint removed or
  // renamed, SMTP turned off): nothing would ever send them, so they are
  // dead letters, saying why.
  Status DeadLetterOrphans() {
    ASSIGN_OR_RETURN(std::set<std::string> queued, outbox_->QueuedLanes());
    for (const std::string& name : queued) {
      if (std::any_of(lanes_.begin(), lanes_.end(),
                      [&](const auto& l) { return l->name == name; })) {
        continue;
      }
      for (;;) {
        ASSIGN_OR_RETURN(std::vector<Record> orphans,
                         outbox_->Due(name, Timestamp(INT64_MAX), 256));
        if (orphans.empty()) break;
        for (const Record& was : orphans) {
          Record r = was;
          r.status = "dead";
          r.finished_at = options_.clock();
          r.last_error = "its receiver (" + name + ") is no longer configured";
          RETURN_IF_ERROR(outbox_->Update(was, r, std::nullopt));
        }
      }
      logger_->warn(
          "notifier: alerts queued for {}, which is no longer "
          "configured, are dead letters",
          name);
    }
    return outbox_->Sync();
  }

  void Start() override {
    MutexLock lk(&mu_);
    if (planner_.joinable()) return;
    stop_ = false;
    planner_ = std::thread([this] { PlanLoop(); });
    for (auto& lane : lanes_) {
      Lane* l = lane.get();
      l->thread = std::thread([this, l] { LaneLoop(*l); });
    }
  }

  void Stop() override {
    {
      MutexLock lk(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    if (planner_.joinable()) planner_.join();
    for (auto& lane : lanes_) {
      if (lane->thread.joinable()) lane->thread.join();
    }
  }

  void Wake() override {
    {
      MutexLock lk(&mu_);
      ++work_;
    }
    cv_.SignalAll();
  }

  bool WaitForPosition(GlobalPosition position,
                       std::chrono::milliseconds timeout) const override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lk(&mu_);
    while (outbox_->position() < position.value()) {
      if (!progress_cv_.WaitUntil(&mu_, deadline)) break;
    }
    return outbox_->position() >= position.value();
  }

  NotifierStats Stats() const override {
    NotifierStats s;
    s.position = outbox_->position();
    const uint64_t head = store_.committed_position().value();
    s.lag = head > s.position ? head - s.position : 0;
    s.pending = outbox_->pending();
    s.dead = outbox_->dead();
    MutexLock lk(&mu_);
    s.healthy = error_.empty();
    s.error = error_;
    s.attempts_ok = stats_.attempts_ok;
    s.attempts_failed = stats_.attempts_failed;
    s.delivered = stats_.delivered;
    s.dead_lettered = stats_.dead_lettered;
    s.withheld = stats_.withheld;
    s.planned = stats_.planned;
    s.timers_checked = stats_.timers_checked;
    return s;
  }

  StatusOr<nlohmann::json> List(const ListQuery& q) const override {
    const size_t limit = std::clamp<size_t>(q.limit, 1, 500);
    ASSIGN_OR_RETURN(Outbox::Page page,
                     outbox_->List(q.status, q.before, limit));
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [r, attempts] : page.rows) {
      nlohmann::json j = {
          {"id", r.id},
          {"status", r.status},
          {"kind", r.notice.kind},
          {"rule", r.notice.rule},
          {"case_id", r.notice.case_id},
          {"urgency", r.notice.urgency},
          {"recipient", r.notice.recipient.id},
          {"recipient_role", domain::RoleName(r.notice.recipient.role)},
          {"channel", r.channel},
          {"created_at", FormatTimestamp(r.created_at)},
          {"send_at", FormatTimestamp(r.notice.send_at)},
          {"attempts", r.attempts}};
      if (r.notice.due.value() != 0) j["due"] = FormatTimestamp(r.notice.due);
      if (r.status == "pending") {
        j["next_attempt_at"] = FormatTimestamp(r.next_attempt_at);
      } else {
        j["finished_at"] = FormatTimestamp(r.finished_at);
      }
      if (!r.last_error.empty()) j["last_error"] = r.last_error;
      nlohmann::json history = nlohmann::json::array();
      for (const Attempt& a : attempts) {
        history.push_back({{"number", a.number},
                           {"at", FormatTimestamp(a.at)},
                           {"duration_ms", a.micros / 1000},
                           {"ok", a.ok},
                           {"detail", a.detail}});
      }
      j["history"] = std::move(history);
      items.push_back(std::move(j));
    }
    nlohmann::json next = nullptr;
    if (!page.next.empty()) next = page.next;
    return nlohmann::json{{"notifications", std::move(items)}, {"next", next}};
  }

 private:
  struct Lane {
    std::string name;
    internal::WebhookTarget webhook;
    std::thread thread;
    // Its own thread's: one receiver, one connection, reused.
    std::unique_ptr<internal::Connection> connection;
  };

  struct Counters {
    std::map<std::string, uint64_t> attempts_ok, attempts_failed, delivered,
        dead_lettered;
    uint64_t withheld = 0;
    uint64_t planned = 0;
    Timestamp timers_checked;
  };

  bool Stopping() const {
    MutexLock lk(&mu_);
    return stop_;
  }

  // Sleeps until `until` on the steady clock, Wake() or Stop().
  void Sleep(std::chrono::steady_clock::time_point until) const {
    MutexLock lk(&mu_);
    if (!stop_) cv_.WaitUntil(&mu_, until);
  }

  // How many times work was added (or the clock moved): a lane that saw
  // this number before it looked for work sleeps only while it is
  // unchanged, so a wake-up between its look and its sleep is not lost.
  uint64_t WorkSeen() const {
    MutexLock lk(&mu_);
    return work_;
  }
  void SleepUnlessWork(uint64_t seen,
                       std::chrono::steady_clock::time_point until) const {
    MutexLock lk(&mu_);
    while (!stop_ && work_ == seen) {
      if (!cv_.WaitUntil(&mu_, until)) break;
    }
  }

  void SetError(const std::string& e) {
    MutexLock lk(&mu_);
    if (error_ != e) logger_->error("notifier: {}", e);
    error_ = e;
  }

  // ---- planning ----

  void PlanLoop() {
    std::unique_ptr<Subscription> sub;
    while (!Stopping()) {
      if (!sub) sub = store_.Subscribe(GlobalPosition(outbox_->position()));
      auto events = sub->Next(kBatch, std::chrono::milliseconds(200));
      Status s = events.status();
      if (s.ok() && !events->empty()) s = PlanBatch(*events);
      if (s.ok()) s = FireTimers();
      if (!s.ok()) {
        if (s.code() == StatusCode::kUnavailable && Stopping()) break;
        SetError(s.ToString());
        sub.reset();  // from the outbox's position again
        Sleep(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        continue;
      }
      {
        MutexLock lk(&mu_);
        if (!error_.empty()) logger_->info("notifier: planning again");
        error_.clear();
      }
      progress_cv_.SignalAll();
    }
  }

  // The case as it stood at `version` (0: before its first event).
  StatusOr<domain::CaseState> StateAt(const std::string& case_id,
                                      uint64_t version) {
    if (version == 0) return domain::CaseState{};
    auto it = cache_.find(case_id);
    if (it != cache_.end() && it->second.version == version) return it->second;
    return service::LoadCase(store_, *catalog_, case_id, version);
  }

  void Remember(const std::string& case_id, domain::CaseState state) {
    if (cache_.size() >= kCachedCases && !cache_.count(case_id)) cache_.clear();
    cache_[case_id] = std::move(state);
  }

  Status PlanBatch(const std::vector<RecordedEvent>& events) {
    const Timestamp now = options_.clock();
    std::vector<Record> records;
    std::map<std::string, Timer> timers;
    for (const RecordedEvent& e : events) {
      if (!service::IsCaseStream(e.stream_id)) continue;
      const uint64_t version = e.version.value();
      ASSIGN_OR_RETURN(domain::CaseState before,
                       StateAt(e.stream_id, version - 1));
      ASSIGN_OR_RETURN(domain::DomainEvent de,
                       service::ToDomainEvent(*catalog_, e));
      domain::CaseState after = domain::Evolve(before, de);
      const bool history = de.recorded_at.value() < outbox_->since().value();
      Plan plan = OnEvent(config_.rules, config_.directory, e.stream_id, before,
                          after, de, history);
      AddRecords(plan.notices, e.position.value(), now, &records);
      for (Timer& t : plan.timers) timers[t.Key()] = std::move(t);
      Remember(e.stream_id, std::move(after));
    }
    std::vector<Timer> set;
    set.reserve(timers.size());
    for (auto& [key, t] : timers) set.push_back(std::move(t));
    RETURN_IF_ERROR(
        outbox_->Commit(records, set, {}, events.back().position.value()));
    Planned(records);
    return Status::OK();
  }

  Status FireTimers() {
    const Timestamp now = options_.clock();
    ASSIGN_OR_RETURN(std::vector<Timer> due, outbox_->DueTimers(now, kBatch));
    if (due.empty()) {
      MutexLock lk(&mu_);
      stats_.timers_checked = now;
      return Status::OK();
    }
    std::vector<Record> records;
    std::vector<Timer> next;
    for (const Timer& t : due) {
      auto state = service::LoadCase(store_, *catalog_, t.case_id);
      if (!state.ok()) {
        // This case cannot be read now; the others go on. It is looked at
        // again in a minute.
        logger_->error("notifier: reading case {} for a deadline: {}",
                       t.case_id, state.status().ToString());
        Timer again = t;
        again.fire_at = Timestamp(now.value() + int64_t{60} * 1000000);
        next.push_back(std::move(again));
        continue;
      }
      Plan plan = OnTimer(config_.rules, config_.directory, *state, t, now);
      AddRecords(plan.notices, 0, now, &records);
      for (Timer& n : plan.timers) {
        // A deadline already past when alerting was first enabled is
        // chased once, not twice: the repeat is for deadlines missed
        // while someone was being told.
        if (n.stage > 0 && n.due.value() < outbox_->since().value()) continue;
        next.push_back(std::move(n));
      }
    }
    RETURN_IF_ERROR(outbox_->Commit(records, next, due, 0));
    Planned(records);
    return Status::OK();
  }

  void Planned(const std::vector<Record>& records) {
    if (records.empty()) return;
    {
      MutexLock lk(&mu_);
      stats_.planned += records.size();
      ++work_;
    }
    cv_.SignalAll();  // the lanes
  }

  // One record per channel the recipient has.
  void AddRecords(const std::vector<Notice>& notices, uint64_t position,
                  Timestamp now, std::vector<Record>* out) const {
    for (const Notice& n : notices) {
      auto contact = config_.contacts.find(n.recipient.id);
      std::vector<std::pair<std::string, std::string>> channels;
      if (contact != config_.contacts.end()) {
        if (!contact->second.email.empty())
          channels.emplace_back("email", "smtp");
        if (!contact->second.webhook.empty()) {
          channels.emplace_back("webhook",
                                "webhook:" + contact->second.webhook);
        }
      }
      if (channels.empty()) channels.emplace_back("none", "");
      for (const auto& [channel, lane] : channels) {
        Record r;
        r.id = NotificationId(n, channel);
        r.notice = n;
        r.channel = channel;
        r.lane = lane;
        r.created_at = now;
        r.position = position;
        if (channel == "none") {
          // Seen by admins as dead letters: someone the rules name cannot
          // be reached.
          r.status = "dead";
          r.finished_at = now;
          r.last_error = "no e-mail address or webhook is configured for " +
                         n.recipient.id;
          logger_->warn("notifier: {}", r.last_error);
        } else {
          r.status = "pending";
          r.next_attempt_at = n.send_at;
        }
        out->push_back(std::move(r));
      }
    }
  }

  // ---- delivery ----

  void LaneLoop(Lane& lane) {
    lane.connection = std::make_unique<internal::Connection>();
    while (!Stopping()) {
      const uint64_t seen = WorkSeen();
      const Timestamp now = options_.clock();
      auto due = outbox_->Due(lane.name, now, 32);
      if (!due.ok()) {
        logger_->error("notifier lane {}: {}", lane.name,
                       due.status().ToString());
        Sleep(std::chrono::steady_clock::now() + std::chrono::seconds(1));
        continue;
      }
      for (const Record& r : *due) {
        if (Stopping()) break;
        Deliver(lane, r);
      }
      // The batch's outcomes, durable together.
      if (!due->empty()) {
        if (Status s = outbox_->Sync(); !s.ok()) {
          logger_->error("notifier lane {}: {}", lane.name, s.ToString());
        }
      }
      if (Stopping()) return;
      if (due->size() == 32) continue;
      auto wait = std::chrono::milliseconds(1000);
      if (auto next = outbox_->NextDue(lane.name)) {
        const int64_t ms = (next->value() - options_.clock().value()) / 1000;
        if (ms <= 0) continue;
        wait = std::min(wait, std::chrono::milliseconds(ms));
      }
      SleepUnlessWork(seen, std::chrono::steady_clock::now() + wait);
    }
  }

  std::chrono::milliseconds Backoff(uint32_t attempts) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    return RetryDelay(config_.retry, attempts, unit(rng));
  }

  void Deliver(Lane& lane, const Record& was) {
    if (was.status != "pending") return;  // Due() gives only those
    Record r = was;
    auto state = service::LoadCase(store_, *catalog_, was.notice.case_id);
    if (!state.ok()) {
      // Not the receiver's fault: try again shortly, not counted.
      logger_->error("notifier: reading case {}: {}", was.notice.case_id,
                     state.status().ToString());
      r.next_attempt_at = PlusMillis(options_.clock(), 5000);
      (void)outbox_->Update(was, r, std::nullopt);
      return;
    }
    if (std::string why = WithheldBecause(*state, was.notice); !why.empty()) {
      r.status = "withheld";
      r.finished_at = options_.clock();
      r.last_error = why;
      if (Status s = outbox_->Update(was, r, std::nullopt); !s.ok()) {
        logger_->error("notifier: {}", s.ToString());
        return;
      }
      MutexLock lk(&mu_);
      ++stats_.withheld;
      return;
    }
    Outgoing out;
    out.id = was.id;
    out.channel = was.channel;
    out.at = options_.clock();
    out.message = Render(was.notice, was.id, config_.console_url);
    auto contact = config_.contacts.find(was.notice.recipient.id);
    if (contact != config_.contacts.end()) {
      out.to =
          was.channel == "email" ? contact->second.email : lane.webhook.url;
    }
    SendResult result;
    const auto t0 = std::chrono::steady_clock::now();
    if (out.to.empty()) {
      result = {false,
                "the recipient has no " + was.channel + " configured any more"};
    } else if (options_.transport) {
      result = options_.transport(out);
    } else if (was.channel == "email") {
      result = internal::SendMail(*lane.connection, *config_.smtp,
                                  smtp_password_, out, config_.send_timeout);
    } else {
      result = internal::SendWebhook(*lane.connection, lane.webhook, out,
                                     internal::WebhookBody(out, was.created_at),
                                     config_.send_timeout);
    }
    const int64_t micros =
        std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - t0)
            .count();
    if (options_.after_send) options_.after_send(out, result);
    Attempt attempt{was.attempts + 1, out.at, micros, result.ok, result.detail};
    r.attempts = attempt.number;
    const Timestamp now = options_.clock();
    if (result.ok) {
      r.status = "delivered";
      r.finished_at = now;
      r.last_error.clear();
    } else if (r.attempts >= config_.retry.max_attempts) {
      r.status = "dead";
      r.finished_at = now;
      r.last_error = result.detail;
      logger_->warn("notifier: {} to {} dead-lettered after {} attempts: {}",
                    r.id, r.notice.recipient.id, r.attempts, result.detail);
    } else {
      r.next_attempt_at = PlusMillis(now, Backoff(r.attempts).count());
      r.last_error = result.detail;
    }
    if (Status s = outbox_->Update(was, r, attempt); !s.ok()) {
      // The queue entry stays: it is sent again, with the same id.
      logger_->error("notifier: recording {}: {}", r.id, s.ToString());
      Sleep(std::chrono::steady_clock::now() + std::chrono::seconds(1));
      return;
    }
    MutexLock lk(&mu_);
    ++(result.ok ? stats_.attempts_ok : stats_.attempts_failed)[r.channel];
    if (r.status == "delivered") ++stats_.delivered[r.channel];
    if (r.status == "dead") ++stats_.dead_lettered[r.channel];
  }

  const EventStore& store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  const NotifyConfig config_;
  std::shared_ptr<spdlog::logger> logger_;
  NotifierOptions options_;
  std::string smtp_password_;
  std::unique_ptr<Outbox> outbox_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  // The planner's own (its thread only).
  std::unordered_map<std::string, domain::CaseState> cache_;

  mutable Mutex mu_;
  mutable CondVar cv_;           // Wake, Stop, new work for the lanes
  mutable CondVar progress_cv_;  // the planned position moved
  bool stop_ GUARDED_BY(mu_) = false;
  uint64_t work_ GUARDED_BY(mu_) = 0;
  std::string error_ GUARDED_BY(mu_);
  Counters stats_ GUARDED_BY(mu_);
  std::thread planner_;
};

}  // namespace

std::chrono::milliseconds RetryDelay(const RetryPolicy& p, uint32_t failures,
                                     double jitter) {
  double base = static_cast<double>(p.initial.count());
  const double max = static_cast<double>(p.max.count());
  for (uint32_t i = 1; i < failures && base < max; ++i) base *= 2;
  base = std::min(base, max);
  // Equal jitter: half the backoff fixed, half random, so that retries
  // after one outage do not all come back at once.
  jitter = std::clamp(jitter, 0.0, 1.0);
  return std::chrono::milliseconds(
      static_cast<int64_t>(base / 2 + jitter * base / 2));
}

Status CheckConfig(const NotifyConfig& c) {
  RETURN_IF_ERROR(CheckRules(c.rules));
  for (const std::string& id : c.directory.dsl) {
    if (std::find(c.directory.alt_dsl.begin(), c.directory.alt_dsl.end(), id) !=
        c.directory.alt_dsl.end()) {
      return Status::InvalidArgument(
          "notify: " + id +
          " is listed both as a DSL and as an alternative DSL; a concern "
          "naming the DSL must not reach them as the alternative");
    }
  }
  for (const auto& [actor, contact] : c.contacts) {
    if (contact.email.empty() && contact.webhook.empty()) {
      return Status::InvalidArgument("notify: contact " + actor +
                                     " has neither an e-mail nor a webhook");
    }
    if (!contact.email.empty()) {
      if (!ValidAddress(contact.email)) {
        return Status::InvalidArgument("notify: contact " + actor +
                                       ": not an e-mail address");
      }
      if (!c.smtp) {
        return Status::InvalidArgument(
            "notify: contact " + actor +
            " has an e-mail address, but no SMTP server is configured");
      }
    }
    if (!contact.webhook.empty() && !c.webhooks.count(contact.webhook)) {
      return Status::InvalidArgument("notify: contact " + actor +
                                     " names the webhook \"" + contact.webhook +
                                     "\", which is not configured");
    }
  }
  for (const auto& [name, w] : c.webhooks) {
    if (name.empty() || name.size() > 64 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
      return Status::InvalidArgument(
          "notify: a webhook's name must be 1 to 64 "
          "of [A-Za-z0-9_-]");
    }
    if (w.url.rfind("https://", 0) != 0 || HasLineBreak(w.url)) {
      return Status::InvalidArgument("notify: webhook " + name +
                                     ": the URL must be https://");
    }
    if (w.secret_file.empty()) {
      return Status::InvalidArgument("notify: webhook " + name +
                                     " has no secret_file");
    }
  }
  if (c.smtp) {
    if ((c.smtp->url.rfind("smtp://", 0) != 0 &&
         c.smtp->url.rfind("smtps://", 0) != 0) ||
        HasLineBreak(c.smtp->url)) {
      return Status::InvalidArgument(
          "notify: the SMTP URL must be smtp:// (with STARTTLS) or smtps://");
    }
    if (!ValidAddress(c.smtp->from)) {
      return Status::InvalidArgument(
          "notify: the SMTP from address is not an "
          "e-mail address");
    }
    if (c.smtp->username.empty() || c.smtp->password_file.empty()) {
      return Status::InvalidArgument(
          "notify: the SMTP server needs a username and a password_file: "
          "mail is sent only with authentication");
    }
  }
  if (c.retry.max_attempts == 0 || c.retry.initial.count() <= 0 ||
      c.retry.max < c.retry.initial) {
    return Status::InvalidArgument(
        "notify: retries need at least one attempt and 0 < initial <= max");
  }
  return Status::OK();
}

std::string NotifyDir(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "notify").string();
}

StatusOr<std::unique_ptr<Notifier>> Notifier::Open(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog, NotifyConfig config,
    std::shared_ptr<spdlog::logger> logger, NotifierOptions options) {
  auto n = std::make_unique<NotifierImpl>(store, std::move(catalog),
                                          std::move(config), std::move(logger),
                                          std::move(options));
  RETURN_IF_ERROR(n->Init(dir));
  return std::unique_ptr<Notifier>(std::move(n));
}

}  // namespace caseledger::notify

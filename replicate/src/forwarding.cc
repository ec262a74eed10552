// Followers' events for the primary's log: the Forwarder (a follower
// publishes them) and the Intake (the primary writes them).
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "caseledger/mutex.h"
#include "caseledger/replicate/replication.h"
#include "replicate/src/nats.h"
#include "replicate/src/worker.h"

namespace caseledger::replicate {
namespace internal {

using Json = nlohmann::json;

std::string EncodeForwarded(const ForwardedEvent& f) {
  const ProposedEvent& e = f.event;
  return Json{{"stream", f.stream_id},
              {"id", e.event_id.ToString()},
              {"type", e.type},
              {"schema_version", e.schema_version},
              {"occurred_at", e.occurred_at.value()},
              {"actor", {{"id", e.actor.id}, {"role", e.actor.role}}},
              {"correlation_id", e.correlation_id},
              {"causation_id", e.causation_id},
              {"payload", e.payload}}
      .dump();
}

StatusOr<ForwardedEvent> DecodeForwarded(std::string_view body) {
  const Json j = Json::parse(body, nullptr, false);
  auto str = [&](const Json& o, const char* key) -> const std::string* {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? &it->get_ref<const std::string&>()
                                            : nullptr;
  };
  if (j.is_discarded() || !j.is_object() || !j.contains("actor") ||
      !j["actor"].is_object()) {
    return Status::InvalidArgument("a forwarded event does not decode");
  }
  const Json& actor = j["actor"];
  const std::string *stream = str(j, "stream"), *id = str(j, "id"),
                    *type = str(j, "type"), *actor_id = str(actor, "id"),
                    *role = str(actor, "role"),
                    *correlation = str(j, "correlation_id"),
                    *causation = str(j, "causation_id"),
                    *payload = str(j, "payload");
  auto version = j.find("schema_version");
  auto occurred = j.find("occurred_at");
  if (!stream || !id || !type || !actor_id || !role || !correlation ||
      !causation || !payload || version == j.end() ||
      !version->is_number_unsigned() || occurred == j.end() ||
      !occurred->is_number_integer()) {
    return Status::InvalidArgument("a forwarded event lacks a field");
  }
  ForwardedEvent f;
  f.stream_id = *stream;
  ASSIGN_OR_RETURN(f.event.event_id, EventId::Parse(*id));
  f.event.type = *type;
  f.event.schema_version = version->get<uint32_t>();
  f.event.occurred_at = Timestamp(occurred->get<int64_t>());
  f.event.actor = Actor{*actor_id, *role};
  f.event.correlation_id = *correlation;
  f.event.causation_id = *causation;
  f.event.payload = *payload;
  return f;
}

}  // namespace internal

namespace {

using internal::MsgPtr;
using internal::Nats;
using internal::SubPtr;

class ForwarderImpl final : public Forwarder {
 public:
  explicit ForwarderImpl(ReplicationConfig config)
      : config_(std::move(config)),
        subject_(internal::AccessSubject(config_)) {}
  ~ForwarderImpl() override { Stop(); }

  void Begin() {
    thread_ = std::thread([this] {
      Run();
      nats_.reset();
      nats_ReleaseThreadMemory();
    });
  }

  void Forward(std::vector<ForwardedEvent> events,
               std::function<void(Status)> done) override {
    {
      MutexLock lk(&mu_);
      if (!stopping_) {
        jobs_.push_back(Job{std::move(events), std::move(done)});
        lk.Unlock();
        cv_.SignalAll();
        return;
      }
    }
    done(Status::Unavailable("the forwarder has stopped"));
  }

  void Stop() override {
    {
      MutexLock lk(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.SignalAll();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Job {
    std::vector<ForwardedEvent> events;
    std::function<void(Status)> done;
  };

  void Run() {
    while (true) {
      Job job;
      {
        MutexLock lk(&mu_);
        while (!stopping_ && jobs_.empty()) cv_.Wait(&mu_);
        if (jobs_.empty()) return;  // stopping, nothing left
        job = std::move(jobs_.front());
        jobs_.pop_front();
        if (stopping_) {
          lk.Unlock();
          job.done(Status::Unavailable("the forwarder has stopped"));
          continue;
        }
      }
      job.done(Publish(job.events));
    }
  }

  // Publishes each event and waits for the cluster to store it, retrying
  // what may mend (no connection yet, an election) until the timeout.
  Status Publish(const std::vector<ForwardedEvent>& events) {
    const auto deadline = std::chrono::steady_clock::now() + config_.timeout;
    Status last;
    for (const ForwardedEvent& e : events) {
      while (true) {
        last = PublishOne(e);
        if (last.ok() || !last.IsUnavailable() ||
            std::chrono::steady_clock::now() >= deadline) {
          break;
        }
        nats_.reset();  // connect afresh
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      if (!last.ok()) return last;
    }
    return Status::OK();
  }

  Status PublishOne(const ForwardedEvent& e) {
    if (!nats_) {
      ASSIGN_OR_RETURN(nats_, Nats::Connect(config_));
      Status ensured = internal::EnsureAccessStream(*nats_, config_);
      if (!ensured.ok()) {
        nats_.reset();
        return ensured;
      }
    }
    const std::string body = internal::EncodeForwarded(e);
    const std::string id = e.event.event_id.ToString();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    po.MaxWait = config_.timeout.count();
    jsPubAck* pa = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_Publish(&pa, nats_->js(), subject_.c_str(), body.data(),
                              static_cast<int>(body.size()), &po, &jerr);
    jsPubAck_Destroy(pa);
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr, "forwarding read record " + id);
    }
    return Status::OK();
  }

  const ReplicationConfig config_;
  const std::string subject_;
  std::unique_ptr<Nats> nats_;  // the forwarder thread's
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;  // waits on mu_
  std::deque<Job> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
};

class IntakeImpl final : public Intake {
 public:
  IntakeImpl(ReplicationConfig config, Write write)
      : config_(std::move(config)),
        write_(std::move(write)),
        stream_(internal::AccessStream(config_)) {}
  ~IntakeImpl() override { Stop(); }

  void Begin() {
    worker_.Start([this] { return Step(); }, [this] { sub_.reset(); });
  }

  uint64_t written() const override { return written_.load(); }
  uint64_t refused() const override { return refused_.load(); }
  Status Health() const override { return worker_.Health(); }
  void Stop() override { worker_.Stop(); }

 private:
  static constexpr char kDurable[] = "primary-intake";

  // Connects, and binds to the intake's durable consumer (made if
  // missing; one for whichever node is the primary).
  StatusOr<SubPtr> Attach() {
    if (!nats_) {
      ASSIGN_OR_RETURN(nats_, Nats::Connect(config_));
    }
    RETURN_IF_ERROR(internal::EnsureAccessStream(*nats_, config_));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = kDurable;
    cc.Description = "caseledger primary: followers' read records";
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = int64_t{10} * 1000 * 1000 * 1000;  // ns
    cc.MaxAckPending = 10000;
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s =
        js_AddConsumer(&ci, nats_->js(), stream_.c_str(), &cc, nullptr, &jerr);
    jsConsumerInfo_Destroy(ci);
    // An existing consumer with this configuration is answered OK.
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr, "creating the intake's consumer");
    }
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream_.c_str();
    so.Consumer = kDurable;
    natsSubscription* raw = nullptr;
    jerr = static_cast<jsErrCode>(0);
    const std::string subject = config_.subjects + "-access.>";
    s = js_PullSubscribe(&raw, nats_->js(), subject.c_str(), kDurable, nullptr,
                         &so, &jerr);
    if (s != NATS_OK) {
      return internal::FromNats(s, jerr, "subscribing to the intake");
    }
    return SubPtr(raw);
  }

  Status Step() {
    if (!sub_) {
      ASSIGN_OR_RETURN(sub_, Attach());
      worker_.SetHealthy();
    }
    return internal::Fetch(sub_.get(), 256, worker_, "the intake",
                           [this](natsMsgList& list) { return Take(list); });
  }

  // Writes a fetched batch, acknowledging each message once its event is
  // written or refused.
  Status Take(natsMsgList& list) {
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      auto event = internal::DecodeForwarded(std::string_view(
          natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))));
      Status written = event.status();
      if (event.ok()) written = WriteOne(std::move(*event));
      if (!written.ok() && !written.IsInvalidArgument()) {
        // Not now (the store refuses writes, or is closing): delivered
        // again once the acknowledgement wait passes.
        return written;
      }
      if (written.ok()) {
        written_.fetch_add(1);
      } else {
        refused_.fetch_add(1);
        spdlog::error("intake: refused a forwarded event: {}",
                      written.ToString());
      }
      natsMsg_Ack(m, nullptr);
    }
    return Status::OK();
  }

  // Hands one event to `write_` and waits until it is durable or refused.
  Status WriteOne(ForwardedEvent event) {
    struct Result {
      Mutex mu;
      CondVar cv;
      bool done GUARDED_BY(mu) = false;
      Status status GUARDED_BY(mu);
    };
    auto result = std::make_shared<Result>();
    write_(std::move(event), [result](Status s) {
      {
        MutexLock lk(&result->mu);
        result->status = std::move(s);
        result->done = true;
      }
      result->cv.SignalAll();
    });
    MutexLock lk(&result->mu);
    while (!result->done) result->cv.Wait(&result->mu);
    return result->status;
  }

  const ReplicationConfig config_;
  const Write write_;
  const std::string stream_;
  std::unique_ptr<Nats> nats_;  // the worker thread's
  SubPtr sub_;
  std::atomic<uint64_t> written_{0}, refused_{0};
  internal::Worker worker_{"intake"};  // last: stopped first
};

}  // namespace

StatusOr<std::unique_ptr<Forwarder>> Forwarder::Start(
    ReplicationConfig config) {
  RETURN_IF_ERROR(CheckConfig(config));
  auto f = std::make_unique<ForwarderImpl>(std::move(config));
  f->Begin();
  return std::unique_ptr<Forwarder>(std::move(f));
}

StatusOr<std::unique_ptr<Intake>> Intake::Start(ReplicationConfig config,
                                                Write write) {
  RETURN_IF_ERROR(CheckConfig(config));
  auto i = std::make_unique<IntakeImpl>(std::move(config), std::move(write));
  i->Begin();
  return std::unique_ptr<Intake>(std::move(i));
}

}  // namespace caseledger::replicate

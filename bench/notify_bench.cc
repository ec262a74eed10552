// Alerting under write load: the time from a command's acknowledgement
// (its events durable) to the delivery of the alerts it causes.
//
//   notify_bench [benchmark flags]
//
// Four writers run durable commands (urgent reports, sync on, through the
// command path) back to back for 5 s, while the notifier follows the log
// live, as in the server: it plans each report's alerts into its outbox
// (a synced write with its checkpoint), and two delivery lanes (e-mail and
// a webhook) send them and record each outcome (a synced write each). The
// transport is in-process, so the figure is the notifier's own: the
// network's time is the receiver's. Baseline, same run: the commands' own
// durable latency (decide + append + fsync).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "caseledger/notify/notifier.h"
#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"

namespace caseledger {
namespace {

using Clock = std::chrono::steady_clock;

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

void BM_CommitToDelivery(benchmark::State& state) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("caseledger-notify-bench-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(path);
  {
    std::unique_ptr<EventStore> store;
    Options o;  // durable: sync on
    if (!EventStore::Open(o, path + "/log", &store).ok()) std::abort();
    auto catalog = *domain::EventCatalog::Load();
    service::KeyConfig kc;
    kc.dev_kek = true;
    auto keys = service::OpenDataKeys(path, kc, catalog, nullptr);
    if (!keys.ok()) std::abort();
    service::CaseService service(*store, catalog, domain::DomainConfig{},
                                 *keys->sealer);

    std::ofstream(path + "/hook.secret")
        << "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";
    notify::NotifyConfig nc;
    nc.enabled = true;
    nc.directory = {{"user:dsl-1"}, {"user:alt-1"}};
    nc.contacts = {{"user:dsl-1", {"dsl@example.org", ""}},
                   {"user:alt-1", {"", "pager"}}};
    std::ofstream(path + "/smtp.password") << "bench\n";
    nc.smtp = notify::SmtpServer{"smtp://127.0.0.1:1", "c@example.org", "bench",
                                 path + "/smtp.password", ""};
    nc.webhooks = {
        {"pager", {"https://127.0.0.1:1/", path + "/hook.secret", ""}}};

    std::mutex mu;
    std::map<std::string, Clock::time_point> acked;
    std::vector<std::pair<std::string, Clock::time_point>> delivered;
    notify::NotifierOptions no;
    no.transport = [&](const notify::Outgoing& out) {
      const auto now = Clock::now();
      std::lock_guard<std::mutex> lk(mu);
      delivered.emplace_back(out.message.data["case_id"].get<std::string>(),
                             now);
      return notify::SendResult{true, "bench"};
    };
    auto opened = notify::Notifier::Open(path + "/notify", *store, catalog, nc,
                                         nullptr, no);
    if (!opened.ok()) {
      std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
      std::abort();
    }
    std::unique_ptr<notify::Notifier> notifier = std::move(*opened);
    notifier->Start();

    std::vector<double> command_ms;
    std::atomic<bool> stop{false};
    const domain::Actor reporter{"user:bench", domain::Role::kReporter};
    nlohmann::json report = [] {
      std::ifstream in(std::string(CASELEDGER_SOURCE_DIR) +
                       "/scripts/examples/report.json");
      return nlohmann::json::parse(in);
    }();
    report["immediate_risk"] = true;  // urgent: alerted at once
    report["emergency_services_called"] = true;
    report["actions_taken"] = "Stayed with the person; called 999.";
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (uint64_t i = 0; !stop.load(); ++i) {
          const std::string id =
              "case-bench-" + std::to_string(w) + "-" + std::to_string(i);
          auto t0 = Clock::now();
          auto r = service.Execute(id, "report", report, reporter);
          if (!r.ok()) {
            std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
            std::abort();
          }
          auto t1 = Clock::now();
          std::lock_guard<std::mutex> lk(mu);
          command_ms.push_back(
              std::chrono::duration<double, std::milli>(t1 - t0).count());
          acked[id] = t1;
        }
      });
    }
    for (auto _ : state) {
      std::this_thread::sleep_for(std::chrono::seconds(5));
    }
    stop = true;
    for (auto& t : writers) t.join();
    // Every alert of every acknowledged report (two each) delivered.
    const size_t want = 2 * acked.size();
    for (int i = 0; i < 600; ++i) {
      {
        std::lock_guard<std::mutex> lk(mu);
        if (delivered.size() >= want) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    notifier->Stop();
    std::vector<double> delivery_ms;
    {
      std::lock_guard<std::mutex> lk(mu);
      for (const auto& [id, at] : delivered) {
        auto it = acked.find(id);
        if (it == acked.end()) continue;
        // A delivery can beat the writer's own return (both follow the
        // same commit): that is a latency of zero.
        delivery_ms.push_back(std::max(
            0.0, std::chrono::duration<double, std::milli>(at - it->second)
                     .count()));
      }
    }
    state.counters["commands"] = static_cast<double>(command_ms.size());
    state.counters["alerts_delivered"] =
        static_cast<double>(delivery_ms.size());
    state.counters["alerts_expected"] = static_cast<double>(want);
    state.counters["commands_per_s"] = static_cast<double>(command_ms.size()) /
                                       5.0 /
                                       static_cast<double>(state.iterations());
    state.counters["command_p50_ms"] = Pct(command_ms, 0.5);
    state.counters["command_p99_ms"] = Pct(command_ms, 0.99);
    state.counters["delivery_p50_ms"] = Pct(delivery_ms, 0.5);
    state.counters["delivery_p99_ms"] = Pct(delivery_ms, 0.99);
    state.counters["delivery_p50_vs_command_p50"] =
        Pct(delivery_ms, 0.5) / std::max(Pct(command_ms, 0.5), 1e-9);
  }
  std::filesystem::remove_all(path);
}

BENCHMARK(BM_CommitToDelivery)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace
}  // namespace caseledger

BENCHMARK_MAIN();

#include "tests/support/test_support.h"

#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

namespace caseledger::testing {

bool WaitFor(const std::function<bool()>& done,
             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

ChildProcess::ChildProcess(const std::string& program,
                           const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return;
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid_ < 0) {
    close(fds[0]);
    return;
  }
  fd_ = fds[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exited_) Kill();
  if (fd_ >= 0) close(fd_);
}

std::string ChildProcess::Beside(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name)
      .string();
}

bool ChildProcess::ReadSome(std::chrono::microseconds wait) {
  if (fd_ < 0) return false;
  fd_set set;
  FD_ZERO(&set);
  FD_SET(fd_, &set);
  timeval tv{static_cast<time_t>(wait.count() / 1000000),
             static_cast<suseconds_t>(wait.count() % 1000000)};
  if (select(fd_ + 1, &set, nullptr, nullptr, &tv) <= 0) return true;
  char buf[65536];
  const ssize_t n = read(fd_, buf, sizeof(buf));
  if (n <= 0) return false;
  output_.append(buf, static_cast<size_t>(n));
  return true;
}

bool ChildProcess::ReadUntil(const std::string& text,
                             std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (output_.find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!ReadSome(std::chrono::milliseconds(10))) {
      return output_.find(text) != std::string::npos;
    }
  }
  return true;
}

void ChildProcess::ReadFor(std::chrono::milliseconds duration) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ReadSome(std::chrono::milliseconds(5))) return;
  }
}

int ChildProcess::Kill() {
  if (pid_ <= 0 || exited_) return 0;
  kill(pid_, SIGKILL);
  return Wait();
}

int ChildProcess::Wait() {
  if (pid_ <= 0 || exited_) return 0;
  // Read while it runs, so a full pipe never blocks it.
  while (ReadSome(std::chrono::milliseconds(10))) {
  }
  int status = 0;
  waitpid(pid_, &status, 0);
  exited_ = true;
  return status;
}

TempDir::TempDir() {
  std::random_device rd;
  std::filesystem::path base = std::filesystem::temp_directory_path();
  for (;;) {
    std::filesystem::path p =
        base /
        ("caseledger-test-" + std::to_string(rd()) + std::to_string(rd()));
    if (std::filesystem::create_directory(p)) {
      path_ = p.string();
      return;
    }
  }
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ProposedEvent MakeEvent(std::string type, std::string payload, EventId id) {
  ProposedEvent e;
  e.event_id = id;
  e.type = std::move(type);
  e.schema_version = 1;
  e.occurred_at = Timestamp(1767225600000000);  // 2026-01-01T00:00:00Z
  e.actor = Actor{"actor-1", "dsl"};
  e.correlation_id = "corr-1";
  e.payload = std::move(payload);
  return e;
}

std::string PayloadOfSize(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s = R"({"facts":")";
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz ";
  while (s.size() + 2 < bytes) s.push_back(kChars[rng() % 27]);
  s += "\"}";
  return s;
}

nlohmann::json ReportBody(bool immediate_risk) {
  nlohmann::json r = {
      {"kind", "concern"},
      {"occurred_at", "2026-03-01T09:00:00Z"},
      {"reported_at", "2026-03-01T10:00:00Z"},
      {"setting", "travel"},
      {"people_involved",
       {{{"person_ref", "person-1"}, {"roles", {"person_affected"}}}}},
      {"facts", "Person A was followed on the way home from a session."},
      {"categories", {"harassment"}},
      {"sac_locations_of_risk", {"in_the_community"}},
      {"sac_sources_of_risk", {"other_unknown_to_individual"}},
      {"immediate_risk", immediate_risk},
      {"emergency_services_called", immediate_risk},
      {"person_affected_knows", true},
      {"under_18_involved", false}};
  if (immediate_risk) r["actions_taken"] = "Stayed with Person A; called 999.";
  return r;
}

nlohmann::json ApprovedScreening(const std::string& learning_id) {
  return {{"learning_id", learning_id},
          {"decision", "approved_for_sharing"},
          {"checklist",
           {{"no_names_or_initials", true},
            {"no_contact_details", true},
            {"no_exact_dates_or_places", true},
            {"no_rare_characteristics", true},
            {"motivated_intruder_test_passed", true}}}};
}

SettableClock& StoreClock() {
  static SettableClock clock;
  return clock;
}

std::vector<std::string> StoredRecords(const EventStore& store) {
  std::vector<std::string> out;
  GlobalPosition after(0);
  while (true) {
    auto page = store.ReadAll(after, 500);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok() || page->empty()) break;
    for (const RecordedEvent& e : *page) out.push_back(EncodeStoredRecord(e));
    after = page->back().position;
  }
  return out;
}

std::unique_ptr<EventStore> OpenStore(const std::string& path,
                                      Options options) {
  if (!options.clock) options.clock = StoreClock().Function();
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, path, &store);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return store;
}

void StoreTest::SetUp() {
  Options o;
  o.sync = false;
  o.clock = clock_.Function();
  store_ = OpenStore(dir_.path() + "/log", o);
  ASSERT_NE(store_, nullptr);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  catalog_ = *catalog;
  keys_ = std::make_unique<TestKeys>(catalog_);
}

TestKeys::TestKeys(std::shared_ptr<const domain::EventCatalog> catalog) {
  keys::KeyStoreOptions o;
  o.sync = false;
  const Status s = keys::KeyStore::Open(o, dir_.path() + "/keys",
                                        keys::Kek::Generate(), {}, &store_);
  EXPECT_TRUE(s.ok()) << s.ToString();
  sealer_ = std::make_unique<keys::Sealer>(std::move(catalog), store_.get());
}

}  // namespace caseledger::testing

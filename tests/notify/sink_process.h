// The local receivers the alerting tests deliver to: tests/notify/sink.py
// (an SMTP server that requires STARTTLS and AUTH, and an HTTPS webhook
// receiver that checks Standard Webhooks signatures), run by Debian's
// Python. Each message received is a JSON line in `out`.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace caseledger::testing {

class Sink {
 public:
  // Starts the sink in `dir` (its certificate and its record of messages
  // go there). `fail_first`: webhook POSTs answered 503 first.
  Sink(const std::string& dir, const std::string& smtp_user,
       const std::string& smtp_password, const std::string& webhook_secret,
       int fail_first = 0)
      : out_(dir + "/received.jsonl") {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    std::vector<std::string> args = {
        "/usr/bin/python3",
        std::string(CASELEDGER_SOURCE_DIR) + "/tests/notify/sink.py",
        "--dir",
        dir,
        "--out",
        out_,
        "--smtp-user",
        smtp_user,
        "--smtp-password",
        smtp_password,
        "--webhook-secret",
        webhook_secret,
        "--webhook-fail-first",
        std::to_string(fail_first)};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      close(in[0]);
      close(in[1]);
      close(out[0]);
      close(out[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    fcntl(stdin_, F_SETFD, FD_CLOEXEC);
    // The ready line: {"smtp_port", "https_port", "ca_file"}.
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    auto ready = nlohmann::json::parse(line, nullptr, false);
    if (ready.is_object()) {
      smtp_port = ready.value("smtp_port", 0);
      https_port = ready.value("https_port", 0);
      ca_file = ready.value("ca_file", "");
    }
  }
  // Killed outright: what it received is already on disk (each line is
  // synced), and nothing of it needs a clean shutdown.
  ~Sink() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  bool started() const { return smtp_port > 0 && https_port > 0; }

  // Every message received so far.
  std::vector<nlohmann::json> Received() const {
    std::vector<nlohmann::json> lines;
    std::ifstream in(out_);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) lines.push_back(std::move(j));
    }
    return lines;
  }

  int smtp_port = 0;
  int https_port = 0;
  std::string ca_file;

 private:
  std::string out_;
  pid_t pid_ = -1;
  int stdin_ = -1;
};

}  // namespace caseledger::testing

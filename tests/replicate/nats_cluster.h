// A JetStream cluster of Debian's nats-server processes on loopback, started
// by the test itself: each server with its own store directory, client,
// cluster and monitoring ports (free ports picked at start; never 4222,
// which the package's own service may hold). Servers can be SIGKILLed and
// started again on the same ports and store.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace caseledger::testing {

class NatsCluster {
 public:
  static constexpr char kServer[] = "/usr/sbin/nats-server";

  // Configures `n` servers under `dir` (not started).
  NatsCluster(const std::string& dir, int n = 3) : dir_(dir) {
    for (int i = 0; i < n; ++i) {
      nodes_.push_back(Node{FreePort(), FreePort(), FreePort(), nullptr});
    }
    for (int i = 0; i < n; ++i) WriteConfig(i);
  }

  static bool Available() { return std::filesystem::exists(kServer); }

  // Starts every server and waits until each reports healthy.
  bool Start() {
    for (int i = 0; i < size(); ++i) Launch(i);
    for (int i = 0; i < size(); ++i) {
      if (!WaitHealthy(i)) return false;
    }
    return true;
  }

  void Kill(int i) {
    if (nodes_[i].process) nodes_[i].process->Kill();
    nodes_[i].process.reset();
  }

  bool Restart(int i) {
    Kill(i);
    Launch(i);
    return WaitHealthy(i);
  }

  int size() const { return static_cast<int>(nodes_.size()); }

  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const Node& n : nodes_) out.push_back(Url(n.client_port));
    return out;
  }
  std::string url(int i) const { return Url(nodes_[i].client_port); }

  // GET `path` from server i's monitoring port: the body, or "" when it
  // does not answer 200.
  std::string Monitor(int i, const std::string& path) const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return "";
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(nodes_[i].http_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string response;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const std::string req =
          "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
      if (send(fd, req.data(), req.size(), 0) ==
          static_cast<ssize_t>(req.size())) {
        char buf[8192];
        ssize_t got = 0;
        while ((got = recv(fd, buf, sizeof buf, 0)) > 0) {
          response.append(buf, static_cast<size_t>(got));
        }
      }
    }
    close(fd);
    if (response.rfind("HTTP/1.0 200", 0) != 0 &&
        response.rfind("HTTP/1.1 200", 0) != 0) {
      return "";
    }
    const size_t body = response.find("\r\n\r\n");
    return body == std::string::npos ? "" : response.substr(body + 4);
  }

 private:
  struct Node {
    int client_port, cluster_port, http_port;
    std::unique_ptr<ChildProcess> process;
  };

  static std::string Url(int port) {
    return "nats://127.0.0.1:" + std::to_string(port);
  }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  std::string ConfigPath(int i) const {
    return dir_ + "/n" + std::to_string(i) + ".conf";
  }

  void WriteConfig(int i) {
    const Node& n = nodes_[i];
    std::ofstream c(ConfigPath(i));
    c << "server_name: n" << i << "\n"
      << "listen: 127.0.0.1:" << n.client_port << "\n"
      << "http: 127.0.0.1:" << n.http_port << "\n"
      << "log_file: \"" << dir_ << "/n" << i << ".log\"\n"
      << "jetstream { store_dir: \"" << dir_ << "/n" << i << "\" }\n"
      << "cluster {\n  name: caseledger-test\n  listen: 127.0.0.1:"
      << n.cluster_port << "\n  routes: [\n";
    for (const Node& other : nodes_) {
      c << "    nats://127.0.0.1:" << other.cluster_port << "\n";
    }
    c << "  ]\n}\n";
  }

  void Launch(int i) {
    nodes_[i].process = std::make_unique<ChildProcess>(
        kServer, std::vector<std::string>{"-c", ConfigPath(i)});
  }

  bool WaitHealthy(int i) const {
    return WaitFor([&] { return !Monitor(i, "/healthz").empty(); },
                   std::chrono::seconds(30));
  }

  std::string dir_;
  std::vector<Node> nodes_;
};

}  // namespace caseledger::testing

// A blocking HTTP/1.1 client on Beast for tests that drive the real server.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <string>

namespace caseledger::testing {

class HttpClient {
 public:
  using Response =
      boost::beast::http::response<boost::beast::http::string_body>;

  explicit HttpClient(uint16_t port) : port_(port), socket_(ioc_) {}

  // Sends one request on the client's connection (opened on first use and
  // reopened if the server closed it).
  Response Send(boost::beast::http::verb method, const std::string& target,
                const std::string& body = "",
                const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    if (!socket_.is_open()) Connect();
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "localhost");
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
      if (!headers.count("Content-Type")) {
        req.set(http::field::content_type, "application/json");
      }
      req.body() = body;
    }
    req.prepare_payload();
    http::write(socket_, req);
    boost::beast::flat_buffer buffer;
    Response res;
    http::read(socket_, buffer, res);
    if (!res.keep_alive()) {
      boost::beast::error_code ec;
      socket_.close(ec);
    }
    return res;
  }

  void Connect() {
    socket_ = boost::asio::ip::tcp::socket(ioc_);
    socket_.connect(boost::asio::ip::tcp::endpoint(
        boost::asio::ip::make_address("127.0.0.1"), port_));
  }
  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  uint16_t port_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace caseledger::testing

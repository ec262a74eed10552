#include "notify/src/transport.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <sstream>

namespace caseledger::notify::internal {
namespace {

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::optional<std::string> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(3 * text.size() / 4 + 1, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(text.data()),
                      static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t size = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the padding's bytes as data.
  if (text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  const size_t end = s.find_last_not_of(ws);
  s.erase(end == std::string::npos ? 0 : end + 1);
  return s;
}

// RFC 5322's date: "Mon, 07 Dec 2026 08:00:00 +0000".
std::string MailDate(Timestamp t) {
  std::time_t secs = static_cast<std::time_t>(t.value() / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// One transfer on a lane's handle: its options start afresh (the
// connection cache stays).
struct Curl {
  CURL* h;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  explicit Curl(Connection& c) : h(static_cast<CURL*>(c.handle())) {
    if (h) {
      curl_easy_reset(h);
      curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    }
  }
  ~Curl() {
    if (h) curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
    curl_slist_free_all(headers);
  }
  Curl(const Curl&) = delete;
  Curl& operator=(const Curl&) = delete;
  void Header(const std::string& line) {
    headers = curl_slist_append(headers, line.c_str());
  }
  std::string Error(CURLcode code) const {
    std::string e = curl_easy_strerror(code);
    if (error[0] != '\0') e += std::string(": ") + error;
    return e;
  }
};

// The receiver's answer body is not kept: its status says enough.
size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

struct Upload {
  std::string_view data;
  size_t at = 0;
};

size_t ReadUpload(char* buf, size_t size, size_t n, void* from) {
  auto* u = static_cast<Upload*>(from);
  const size_t room = size * n;
  const size_t left = u->data.size() - u->at;
  const size_t take = left < room ? left : room;
  std::memcpy(buf, u->data.data() + u->at, take);
  u->at += take;
  return take;
}

}  // namespace

Connection::Connection() : handle_(curl_easy_init()) {}

Connection::~Connection() {
  if (handle_) curl_easy_cleanup(static_cast<CURL*>(handle_));
}

void InitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read the secret file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty())
    return Status::InvalidArgument("the secret file " + path + " is empty");
  return s;
}

StatusOr<std::string> ReadWebhookSecret(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadSecretFile(path));
  text = Trim(text);
  constexpr std::string_view kPrefix = "whsec_";
  std::string_view b64 = text;
  if (b64.substr(0, kPrefix.size()) != kPrefix) {
    return Status::InvalidArgument("the webhook secret in " + path +
                                   " must start with whsec_");
  }
  b64.remove_prefix(kPrefix.size());
  std::optional<std::string> key = Unbase64(b64);
  if (!key || key->size() < 24 || key->size() > 64) {
    return Status::InvalidArgument(
        "the webhook secret in " + path +
        " must be whsec_ and 24 to 64 bytes in base64");
  }
  return *key;
}

std::string WebhookBody(const Outgoing& out, Timestamp created_at) {
  nlohmann::json body = {{"type", out.message.type},
                         {"timestamp", FormatTimestamp(created_at)},
                         {"data", out.message.data}};
  body["data"]["notification_id"] = out.id;
  return body.dump();
}

std::string SignWebhook(std::string_view key, std::string_view id,
                        int64_t unix_seconds, std::string_view body) {
  const std::string content = fmt::format("{}.{}.{}", id, unix_seconds, body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(),
       mac, &len);
  return "v1," + Base64(std::string_view(reinterpret_cast<char*>(mac), len));
}

SendResult SendWebhook(Connection& connection, const WebhookTarget& target,
                       const Outgoing& out, const std::string& body,
                       std::chrono::milliseconds timeout) {
  Curl c(connection);
  if (!c.h) return {false, "curl: cannot start a transfer"};
  const int64_t ts = out.at.value() / 1000000;
  c.Header("Content-Type: application/json");
  c.Header("webhook-id: " + out.id);
  c.Header("webhook-timestamp: " + std::to_string(ts));
  c.Header("webhook-signature: " + SignWebhook(target.key, out.id, ts, body));
  curl_easy_setopt(c.h, CURLOPT_URL, target.url.c_str());
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.headers);
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c.h, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(timeout.count()));
  if (!target.ca_file.empty()) {
    curl_easy_setopt(c.h, CURLOPT_CAINFO, target.ca_file.c_str());
  }
  curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(c.h);
  if (rc != CURLE_OK) return {false, c.Error(rc)};
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  return {code >= 200 && code < 300, fmt::format("HTTP {}", code)};
}

std::string MailMessage(const SmtpServer& server, const Outgoing& out) {
  const size_t at = server.from.rfind('@');
  const std::string domain = at == std::string::npos
                                 ? "caseledger.invalid"
                                 : server.from.substr(at + 1);
  std::string m;
  m += "Date: " + MailDate(out.at) + "\r\n";
  m += "From: caseledger <" + server.from + ">\r\n";
  m += "To: <" + out.to + ">\r\n";
  m += "Message-ID: <" + out.id + "@" + domain + ">\r\n";
  m += "Subject: " + out.message.subject + "\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "X-Caseledger-Notification: " + out.id + "\r\n";
  m += "\r\n";
  m += out.message.text;
  return m;
}

SendResult SendMail(Connection& connection, const SmtpServer& server,
                    const std::string& password, const Outgoing& out,
                    std::chrono::milliseconds timeout) {
  Curl c(connection);
  if (!c.h) return {false, "curl: cannot start a transfer"};
  const std::string message = MailMessage(server, out);
  Upload upload{message};
  curl_slist* rcpt = curl_slist_append(nullptr, ("<" + out.to + ">").c_str());
  const std::string from = "<" + server.from + ">";
  curl_easy_setopt(c.h, CURLOPT_URL, server.url.c_str());
  curl_easy_setopt(c.h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  // STARTTLS, or TLS from the start: never in clear.
  curl_easy_setopt(c.h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
  if (!server.username.empty()) {
    curl_easy_setopt(c.h, CURLOPT_USERNAME, server.username.c_str());
    curl_easy_setopt(c.h, CURLOPT_PASSWORD, password.c_str());
  }
  if (!server.ca_file.empty()) {
    curl_easy_setopt(c.h, CURLOPT_CAINFO, server.ca_file.c_str());
  }
  curl_easy_setopt(c.h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c.h, CURLOPT_MAIL_RCPT, rcpt);
  curl_easy_setopt(c.h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c.h, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(c.h, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c.h, CURLOPT_INFILESIZE_LARGE,
                   static_cast<curl_off_t>(message.size()));
  curl_easy_setopt(c.h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c.h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(timeout.count()));
  CURLcode rc = curl_easy_perform(c.h);
  long code = 0;
  curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(rcpt);
  if (rc != CURLE_OK) {
    return {false, code != 0 ? fmt::format("SMTP {}: {}", code, c.Error(rc))
                             : c.Error(rc)};
  }
  return {true, fmt::format("SMTP {}", code)};
}

}  // namespace caseledger::notify::internal

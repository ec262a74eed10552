// Sending, through libcurl: webhooks over HTTPS, signed as the Standard
// Webhooks specification says, and e-mail over SMTP with STARTTLS (or
// SMTPS) and authentication. Each call is one attempt, bounded by
// `timeout`; it blocks its caller (a delivery lane) and no one else.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "caseledger/notify/notifier.h"

namespace caseledger::notify::internal {

// curl_global_init, once per process, before any thread sends.
void InitCurl();

// A lane's libcurl handle, kept between attempts so that its connection
// (and TLS session) to the receiver is reused. One thread at a time.
class Connection {
 public:
  Connection();
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  void* handle() const { return handle_; }

 private:
  void* handle_;
};

struct WebhookTarget {
  std::string url;
  std::string key;  // the secret's bytes (base64-decoded, without whsec_)
  std::string ca_file;
};

// The secret in a file ("whsec_" + base64, whitespace around it ignored)
// as bytes; kInvalidArgument if it is not that.
StatusOr<std::string> ReadWebhookSecret(const std::string& path);
// A file's contents less a trailing line break (a password).
StatusOr<std::string> ReadSecretFile(const std::string& path);

// The body a webhook carries: {"type", "timestamp", "data"}.
std::string WebhookBody(const Outgoing& out, Timestamp created_at);
// "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>".
std::string SignWebhook(std::string_view key, std::string_view id,
                        int64_t unix_seconds, std::string_view body);
SendResult SendWebhook(Connection& connection, const WebhookTarget& target,
                       const Outgoing& out, const std::string& body,
                       std::chrono::milliseconds timeout);

// The RFC 5322 message: headers (the id as Message-ID) and the text.
std::string MailMessage(const SmtpServer& server, const Outgoing& out);
SendResult SendMail(Connection& connection, const SmtpServer& server,
                    const std::string& password, const Outgoing& out,
                    std::chrono::milliseconds timeout);

}  // namespace caseledger::notify::internal

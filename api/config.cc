#include "api/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace caseledger::api {
namespace {

using Json = nlohmann::json;

// Reads the members of one JSON object, checking each against its type and
// range, and refusing any member it was not asked for.
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string pointer)
      : object_(object), pointer_(std::move(pointer)) {}

  Status Check() const {
    if (!object_.is_object()) {
      return Status::InvalidField(Where(""), Where("") + " must be an object");
    }
    return Status::OK();
  }

  template <typename T>
  Status Integer(const char* key, int64_t min, int64_t max, T* out) {
    const Json* v = Take(key);
    if (!v) return Status::OK();
    if (!v->is_number_integer() || v->get<int64_t>() < min ||
        v->get<int64_t>() > max) {
      return Status::InvalidField(
          Where(key), Where(key) + " must be an integer from " +
                          std::to_string(min) + " to " + std::to_string(max));
    }
    *out = static_cast<T>(v->get<int64_t>());
    return Status::OK();
  }

  Status String(const char* key, std::string* out) {
    const Json* v = Take(key);
    if (!v) return Status::OK();
    if (!v->is_string() || v->get<std::string>().empty()) {
      return Status::InvalidField(Where(key),
                                  Where(key) + " must be a non-empty string");
    }
    *out = v->get<std::string>();
    return Status::OK();
  }

  Status Bool(const char* key, bool* out) {
    const Json* v = Take(key);
    if (!v) return Status::OK();
    if (!v->is_boolean()) {
      return Status::InvalidField(Where(key),
                                  Where(key) + " must be a boolean");
    }
    *out = v->get<bool>();
    return Status::OK();
  }

  // A nested object, or null if absent.
  const Json* Object(const char* key) { return Take(key); }

  // Any member not taken is a mistake (a typo, or an option that does not
  // exist): say which.
  Status NoOthers() const {
    for (const auto& [key, value] : object_.items()) {
      if (!taken_.count(key) && key != "$comment") {
        return Status::InvalidField(Where(key),
                                    "unknown configuration key " + Where(key));
      }
    }
    return Status::OK();
  }

  std::string Where(const std::string& key) const {
    return key.empty() ? (pointer_.empty() ? "/" : pointer_)
                       : pointer_ + "/" + key;
  }

 private:
  const Json* Take(const char* key) {
    taken_.insert(key);
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  const Json& object_;
  std::string pointer_;
  std::set<std::string> taken_;
};

Status ApplyMinutes(ObjectReader& r, const char* key, std::chrono::minutes* out,
                    int64_t max = int64_t{366} * 24 * 60) {
  int64_t m = out->count();
  RETURN_IF_ERROR(r.Integer(key, 1, max, &m));
  *out = std::chrono::minutes(m);
  return Status::OK();
}

Status ApplySeconds(ObjectReader& r, const char* key, int64_t min,
                    std::chrono::seconds* out) {
  int64_t s = out->count();
  RETURN_IF_ERROR(r.Integer(key, min, int64_t{24} * 3600, &s));
  *out = std::chrono::seconds(s);
  return Status::OK();
}

// "rules": [{"name": id, "kind": a concern kind or "*", "years": N}]: each
// name and kind once.
Status ApplyRetentionRules(const Json& rules,
                           std::vector<domain::RetentionRule>* out) {
  const std::string at = "/retention/rules";
  if (!rules.is_array() || rules.size() > 64) {
    return Status::InvalidField(at,
                                at + " must be an array of at most 64 rules");
  }
  std::vector<domain::RetentionRule> parsed;
  std::set<std::string> names, kinds;
  for (size_t i = 0; i < rules.size(); ++i) {
    ObjectReader r(rules[i], at + "/" + std::to_string(i));
    RETURN_IF_ERROR(r.Check());
    domain::RetentionRule rule;
    RETURN_IF_ERROR(r.String("name", &rule.name));
    RETURN_IF_ERROR(r.String("kind", &rule.kind));
    rule.years = 0;
    RETURN_IF_ERROR(r.Integer("years", 1, 150, &rule.years));
    RETURN_IF_ERROR(r.NoOthers());
    const auto id_char = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' ||
             ch == '_' || ch == ':' || ch == '-';
    };
    if (rule.name.empty() || rule.name.size() > 128 ||
        !std::all_of(rule.name.begin(), rule.name.end(), id_char)) {
      return Status::InvalidField(
          r.Where("name"),
          r.Where("name") + " must be 1 to 128 of [A-Za-z0-9._:-]");
    }
    if (rule.kind.empty() || rule.years == 0) {
      return Status::InvalidField(r.Where(""), r.Where("") +
                                                   " needs a name, a kind "
                                                   "(or \"*\") and years");
    }
    if (!names.insert(rule.name).second || !kinds.insert(rule.kind).second) {
      return Status::InvalidField(
          r.Where(""), r.Where("") + " repeats a rule's name or kind");
    }
    parsed.push_back(std::move(rule));
  }
  *out = std::move(parsed);
  return Status::OK();
}

// A list of audiences ("dsl", "alt_dsl", "lead", "lead_or_dsl").
Status ApplyAudiences(const Json& list, const std::string& at,
                      std::vector<notify::Audience>* out) {
  if (!list.is_array() || list.size() > 8) {
    return Status::InvalidField(at, at + " must be an array of audiences");
  }
  out->clear();
  for (size_t i = 0; i < list.size(); ++i) {
    auto a = list[i].is_string()
                 ? notify::ParseAudience(list[i].get<std::string>())
                 : std::nullopt;
    if (!a) {
      return Status::InvalidField(
          at + "/" + std::to_string(i),
          at + "/" + std::to_string(i) +
              " must be one of dsl, alt_dsl, lead, lead_or_dsl");
    }
    out->push_back(*a);
  }
  return Status::OK();
}

Status ApplyNotifyRules(const Json& rules, std::vector<notify::Rule>* out) {
  const std::string at = "/notify/rules";
  if (!rules.is_array() || rules.size() > 64) {
    return Status::InvalidField(at,
                                at + " must be an array of at most 64 rules");
  }
  std::vector<notify::Rule> parsed;
  for (size_t i = 0; i < rules.size(); ++i) {
    ObjectReader r(rules[i], at + "/" + std::to_string(i));
    RETURN_IF_ERROR(r.Check());
    notify::Rule rule;
    RETURN_IF_ERROR(r.String("name", &rule.name));
    RETURN_IF_ERROR(r.String("event", &rule.event));
    std::string deadline, when;
    RETURN_IF_ERROR(r.String("deadline", &deadline));
    if (!deadline.empty()) {
      rule.deadline = notify::ParseDeadline(deadline);
      if (!rule.deadline) {
        return Status::InvalidField(
            r.Where("deadline"),
            r.Where("deadline") +
                " must be acknowledgement, escalation_acknowledgement, "
                "review or action");
      }
    }
    RETURN_IF_ERROR(r.String("when", &when));
    if (!when.empty()) {
      auto w = notify::ParseWhen(when);
      if (!w) {
        return Status::InvalidField(
            r.Where("when"), r.Where("when") +
                                 " must be always, urgent, not_urgent or "
                                 "lead_barred");
      }
      rule.when = *w;
    }
    if (const Json* to = r.Object("to")) {
      RETURN_IF_ERROR(ApplyAudiences(*to, r.Where("to"), &rule.to));
    }
    if (const Json* to = r.Object("repeat_to")) {
      RETURN_IF_ERROR(
          ApplyAudiences(*to, r.Where("repeat_to"), &rule.repeat_to));
    }
    int64_t delay = 0, repeat = rule.repeat_after.count();
    RETURN_IF_ERROR(
        r.Integer("delay_minutes", 0, int64_t{7} * 24 * 60, &delay));
    RETURN_IF_ERROR(
        r.Integer("repeat_after_minutes", 0, int64_t{30} * 24 * 60, &repeat));
    rule.delay = std::chrono::minutes(delay);
    rule.repeat_after = std::chrono::minutes(repeat);
    RETURN_IF_ERROR(r.Bool("unless_acknowledged", &rule.unless_acknowledged));
    RETURN_IF_ERROR(r.NoOthers());
    parsed.push_back(std::move(rule));
  }
  Status s = notify::CheckRules(parsed);
  if (!s.ok()) return Status::InvalidField(at, at + ": " + s.message());
  *out = std::move(parsed);
  return Status::OK();
}

// "replication": the log through a NATS JetStream cluster (replicate/).
// Present: enabled, unless "enabled": false.
Status ApplyReplication(const Json& j, ServeConfig::Replication* out) {
  ObjectReader r(j, "/replication");
  RETURN_IF_ERROR(r.Check());
  out->enabled = true;
  RETURN_IF_ERROR(r.Bool("enabled", &out->enabled));
  replicate::ReplicationConfig& n = out->nats;
  if (const Json* servers = r.Object("servers")) {
    if (!servers->is_array() || servers->empty() || servers->size() > 16 ||
        !std::all_of(servers->begin(), servers->end(), [](const Json& v) {
          return v.is_string() && !v.get<std::string>().empty();
        })) {
      return Status::InvalidField(
          r.Where("servers"),
          r.Where("servers") + " must be an array of 1 to 16 NATS URLs");
    }
    n.servers = servers->get<std::vector<std::string>>();
  }
  RETURN_IF_ERROR(r.String("node", &n.node));
  RETURN_IF_ERROR(r.String("stream", &n.stream));
  RETURN_IF_ERROR(r.String("subjects", &n.subjects));
  RETURN_IF_ERROR(r.Integer("replicas", 1, 5, &n.replicas));
  int64_t timeout = n.timeout.count();
  RETURN_IF_ERROR(r.Integer("timeout_ms", 100, 60000, &timeout));
  n.timeout = std::chrono::milliseconds(timeout);
  RETURN_IF_ERROR(r.String("credentials_file", &n.credentials_file));
  RETURN_IF_ERROR(r.String("tls_ca_file", &n.tls_ca_file));
  RETURN_IF_ERROR(r.String("signing_key_file", &n.signing_key_file));
  int64_t interval = n.checkpoint_interval.count();
  RETURN_IF_ERROR(
      r.Integer("checkpoint_interval_ms", 100, 86400000, &interval));
  n.checkpoint_interval = std::chrono::milliseconds(interval);
  RETURN_IF_ERROR(r.String("checkpoint_public_key", &n.checkpoint_public_key));
  RETURN_IF_ERROR(r.String("primary_url", &out->primary_url));
  RETURN_IF_ERROR(r.Bool("quorum", &out->quorum));
  int64_t wait = out->quorum_wait.count();
  RETURN_IF_ERROR(r.Integer("quorum_wait_ms", 100, 120000, &wait));
  out->quorum_wait = std::chrono::milliseconds(wait);
  RETURN_IF_ERROR(r.NoOthers());
  if (!out->enabled) return Status::OK();
  Status s = replicate::CheckConfig(n);
  if (!s.ok()) return Status::InvalidField("/replication", s.message());
  return Status::OK();
}

// "notify": alerting (notify/). Present: enabled, unless "enabled": false.
// Addresses are configuration; secrets are files named here.
Status ApplyNotify(const Json& j, notify::NotifyConfig* n) {
  ObjectReader r(j, "/notify");
  RETURN_IF_ERROR(r.Check());
  n->enabled = true;
  RETURN_IF_ERROR(r.Bool("enabled", &n->enabled));
  RETURN_IF_ERROR(r.String("console_url", &n->console_url));
  int64_t timeout = n->send_timeout.count();
  RETURN_IF_ERROR(r.Integer("send_timeout_ms", 100, 120000, &timeout));
  n->send_timeout = std::chrono::milliseconds(timeout);
  if (const Json* rec = r.Object("recipients")) {
    ObjectReader g(*rec, "/notify/recipients");
    RETURN_IF_ERROR(g.Check());
    for (auto [key, into] : {std::pair{"dsl", &n->directory.dsl},
                             std::pair{"alt_dsl", &n->directory.alt_dsl}}) {
      if (const Json* ids = g.Object(key)) {
        if (!ids->is_array() || ids->size() > 64 ||
            !std::all_of(ids->begin(), ids->end(), [](const Json& v) {
              return v.is_string() && !v.get<std::string>().empty();
            })) {
          return Status::InvalidField(
              g.Where(key), g.Where(key) + " must be an array of actor ids");
        }
        *into = ids->get<std::vector<std::string>>();
      }
    }
    RETURN_IF_ERROR(g.NoOthers());
  }
  if (const Json* contacts = r.Object("contacts")) {
    if (!contacts->is_object()) {
      return Status::InvalidField("/notify/contacts",
                                  "/notify/contacts must be an object");
    }
    for (const auto& [actor, value] : contacts->items()) {
      ObjectReader c(value, "/notify/contacts/" + actor);
      RETURN_IF_ERROR(c.Check());
      notify::Contact contact;
      RETURN_IF_ERROR(c.String("email", &contact.email));
      RETURN_IF_ERROR(c.String("webhook", &contact.webhook));
      RETURN_IF_ERROR(c.NoOthers());
      n->contacts[actor] = contact;
    }
  }
  if (const Json* hooks = r.Object("webhooks")) {
    if (!hooks->is_object()) {
      return Status::InvalidField("/notify/webhooks",
                                  "/notify/webhooks must be an object");
    }
    for (const auto& [name, value] : hooks->items()) {
      ObjectReader w(value, "/notify/webhooks/" + name);
      RETURN_IF_ERROR(w.Check());
      notify::WebhookEndpoint e;
      RETURN_IF_ERROR(w.String("url", &e.url));
      RETURN_IF_ERROR(w.String("secret_file", &e.secret_file));
      RETURN_IF_ERROR(w.String("ca_file", &e.ca_file));
      RETURN_IF_ERROR(w.NoOthers());
      n->webhooks[name] = e;
    }
  }
  if (const Json* smtp = r.Object("smtp")) {
    ObjectReader m(*smtp, "/notify/smtp");
    RETURN_IF_ERROR(m.Check());
    notify::SmtpServer server;
    RETURN_IF_ERROR(m.String("url", &server.url));
    RETURN_IF_ERROR(m.String("from", &server.from));
    RETURN_IF_ERROR(m.String("username", &server.username));
    RETURN_IF_ERROR(m.String("password_file", &server.password_file));
    RETURN_IF_ERROR(m.String("ca_file", &server.ca_file));
    RETURN_IF_ERROR(m.NoOthers());
    n->smtp = server;
  }
  if (const Json* retry = r.Object("retry")) {
    ObjectReader t(*retry, "/notify/retry");
    RETURN_IF_ERROR(t.Check());
    RETURN_IF_ERROR(t.Integer("max_attempts", 1, 100, &n->retry.max_attempts));
    int64_t initial = n->retry.initial.count(), max = n->retry.max.count();
    RETURN_IF_ERROR(
        t.Integer("initial_ms", 10, int64_t{24} * 3600000, &initial));
    RETURN_IF_ERROR(t.Integer("max_ms", 10, int64_t{7} * 24 * 3600000, &max));
    n->retry.initial = std::chrono::milliseconds(initial);
    n->retry.max = std::chrono::milliseconds(max);
    RETURN_IF_ERROR(t.NoOthers());
  }
  if (const Json* rules = r.Object("rules")) {
    RETURN_IF_ERROR(ApplyNotifyRules(*rules, &n->rules));
  }
  RETURN_IF_ERROR(r.NoOthers());
  if (n->enabled) {
    Status s = notify::CheckConfig(*n);
    if (!s.ok()) return Status::InvalidField("/notify", s.message());
  }
  return Status::OK();
}

bool IsLoopback(const std::string& host) {
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return std::memcmp(&v6, &in6addr_loopback, sizeof(v6)) == 0;
  }
  return false;
}

}  // namespace

Status ApplyListen(const std::string& listen, ServerOptions* server) {
  Status bad = Status::InvalidArgument(
      "listen must be HOST:PORT (an IP address and a port), got '" + listen +
      "'");
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad;
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
    return bad;
  }
  const std::string port = listen.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return bad;
  }
  server->host = host;
  server->port = static_cast<uint16_t>(std::stoul(port));
  return Status::OK();
}

Status ApplyConfigText(const std::string& text, ServeConfig* c) {
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false,
                         /*ignore_comments=*/false);
  if (doc.is_discarded()) {
    return Status::InvalidArgument("the configuration is not valid JSON");
  }
  ObjectReader top(doc, "");
  RETURN_IF_ERROR(top.Check());
  RETURN_IF_ERROR(top.String("data", &c->data));
  std::string listen;
  RETURN_IF_ERROR(top.String("listen", &listen));
  if (!listen.empty()) {
    Status s = ApplyListen(listen, &c->server);
    if (!s.ok()) return Status::InvalidField("/listen", s.message());
  }
  RETURN_IF_ERROR(top.Integer("threads", 0, 256, &c->server.threads));
  RETURN_IF_ERROR(top.Integer("workers", 1, 256, &c->workers));
  RETURN_IF_ERROR(top.String("pseudonym_key_file", &c->pseudonym_key_file));
  RETURN_IF_ERROR(top.String("backup_dir", &c->backup_dir));
  RETURN_IF_ERROR(top.String("kek_file", &c->kek_file));
  RETURN_IF_ERROR(top.String("destroyed_keys_file", &c->destroyed_keys_file));
  RETURN_IF_ERROR(top.Bool("verbose", &c->verbose));
  RETURN_IF_ERROR(ApplySeconds(top, "shutdown_grace_seconds", 0,
                               &c->server.shutdown_grace));

  if (const Json* limits = top.Object("limits")) {
    ObjectReader r(*limits, "/limits");
    RETURN_IF_ERROR(r.Check());
    RETURN_IF_ERROR(
        r.Integer("max_body_bytes", 1, 64 << 20, &c->server.max_body_bytes));
    RETURN_IF_ERROR(r.Integer("max_header_bytes", 1024, 1 << 20,
                              &c->server.max_header_bytes));
    RETURN_IF_ERROR(
        r.Integer("max_connections", 1, 100000, &c->server.max_connections));
    RETURN_IF_ERROR(r.Integer("max_json_depth", 2, 512, &c->max_json_depth));
    uint64_t budget_ms = static_cast<uint64_t>(c->command_budget.count());
    RETURN_IF_ERROR(r.Integer("command_budget_ms", 100, 600000, &budget_ms));
    c->command_budget = std::chrono::milliseconds(budget_ms);
    RETURN_IF_ERROR(
        ApplySeconds(r, "read_timeout_seconds", 1, &c->server.read_timeout));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* tls = top.Object("tls")) {
    ObjectReader r(*tls, "/tls");
    RETURN_IF_ERROR(r.Check());
    RETURN_IF_ERROR(
        r.String("certificate_file", &c->server.tls_certificate_file));
    RETURN_IF_ERROR(
        r.String("private_key_file", &c->server.tls_private_key_file));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* summary = top.Object("learning_summary")) {
    ObjectReader r(*summary, "/learning_summary");
    RETURN_IF_ERROR(r.Check());
    RETURN_IF_ERROR(
        r.Integer("suppress_below", 0, 1000, &c->summary.suppress_below));
    RETURN_IF_ERROR(r.Integer("round_to", 1, 1000, &c->summary.round_to));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* feed = top.Object("learning_feed")) {
    ObjectReader r(*feed, "/learning_feed");
    RETURN_IF_ERROR(r.Check());
    RETURN_IF_ERROR(r.Integer("release_delay_months", 0, 24,
                              &c->feed_release_delay_months));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* deadlines = top.Object("deadlines")) {
    ObjectReader r(*deadlines, "/deadlines");
    RETURN_IF_ERROR(r.Check());
    auto& d = c->domain;
    RETURN_IF_ERROR(
        ApplyMinutes(r, "acknowledge_urgent_minutes", &d.acknowledge_urgent));
    RETURN_IF_ERROR(ApplyMinutes(r, "acknowledge_standard_minutes",
                                 &d.acknowledge_standard));
    RETURN_IF_ERROR(ApplyMinutes(r, "escalation_emergency_minutes",
                                 &d.escalation_emergency));
    RETURN_IF_ERROR(
        ApplyMinutes(r, "escalation_urgent_minutes", &d.escalation_urgent));
    RETURN_IF_ERROR(
        ApplyMinutes(r, "escalation_standard_minutes", &d.escalation_standard));
    RETURN_IF_ERROR(
        r.Integer("review_interval_days", 1, 366, &d.review_interval_days));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* console = top.Object("console")) {
    ObjectReader r(*console, "/console");
    RETURN_IF_ERROR(r.Check());
    RETURN_IF_ERROR(ApplyMinutes(r, "session_idle_minutes", &c->session_idle,
                                 int64_t{24} * 60));
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* retention = top.Object("retention")) {
    ObjectReader r(*retention, "/retention");
    RETURN_IF_ERROR(r.Check());
    int64_t hours = c->retention_sweep_interval.count();
    RETURN_IF_ERROR(
        r.Integer("sweep_interval_hours", 1, int64_t{24} * 31, &hours));
    c->retention_sweep_interval = std::chrono::hours(hours);
    if (const Json* rules = r.Object("rules")) {
      RETURN_IF_ERROR(ApplyRetentionRules(*rules, &c->domain.retention_rules));
    }
    RETURN_IF_ERROR(r.NoOthers());
  }
  if (const Json* rep = top.Object("replication")) {
    RETURN_IF_ERROR(ApplyReplication(*rep, &c->replication));
  }
  if (const Json* n = top.Object("notify")) {
    RETURN_IF_ERROR(ApplyNotify(*n, &c->notify));
  }
  return top.NoOthers();
}

Status ApplyConfigFile(const std::string& path, ServeConfig* config) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read the configuration " + path);
  std::stringstream text;
  text << in.rdbuf();
  Status s = ApplyConfigText(text.str(), config);
  if (s.ok()) return s;
  return Status::InvalidArgument(path + ": " + s.message());
}

Status ApplyEnvironment(const std::function<const char*(const char*)>& getenv,
                        ServeConfig* c) {
  // Each variable is applied as the file's key of the same meaning, so the
  // checks (and the error messages) are the same.
  struct Var {
    const char* name;
    const char* pointer;  // where it goes in the configuration document
    bool integer;
  };
  static constexpr Var kVars[] = {
      {"CASELEDGER_DATA", "/data", false},
      {"CASELEDGER_LISTEN", "/listen", false},
      {"CASELEDGER_THREADS", "/threads", true},
      {"CASELEDGER_WORKERS", "/workers", true},
      {"CASELEDGER_MAX_CONNECTIONS", "/limits/max_connections", true},
      {"CASELEDGER_MAX_BODY_BYTES", "/limits/max_body_bytes", true},
      {"CASELEDGER_TLS_CERTIFICATE", "/tls/certificate_file", false},
      {"CASELEDGER_TLS_PRIVATE_KEY", "/tls/private_key_file", false},
      {"CASELEDGER_PSEUDONYM_KEY_FILE", "/pseudonym_key_file", false},
      {"CASELEDGER_BACKUP_DIR", "/backup_dir", false},
      {"CASELEDGER_KEK_FILE", "/kek_file", false},
      {"CASELEDGER_DESTROYED_KEYS_FILE", "/destroyed_keys_file", false},
  };
  for (const Var& var : kVars) {
    const char* value = getenv(var.name);
    if (!value) continue;
    Json doc = Json::object();
    Json::json_pointer where(var.pointer);
    if (var.integer) {
      std::string v(value);
      if (v.empty() || v.size() > 12 ||
          v.find_first_not_of("0123456789") != std::string::npos) {
        return Status::InvalidArgument(std::string(var.name) +
                                       " must be a whole number");
      }
      doc[where] = std::stoll(v);
    } else {
      doc[where] = value;
    }
    Status s = ApplyConfigText(doc.dump(), c);
    if (!s.ok()) {
      return Status::InvalidArgument(std::string(var.name) + ": " +
                                     s.message());
    }
  }
  return Status::OK();
}

Status CheckConfig(const ServeConfig& c) {
  const auto& s = c.server;
  if (s.tls_certificate_file.empty() != s.tls_private_key_file.empty()) {
    return Status::InvalidArgument(
        "TLS needs both a certificate file and a private key file");
  }
  if (s.tls_certificate_file.empty() && !IsLoopback(s.host)) {
    return Status::InvalidArgument(
        "plain HTTP is served on a loopback address only; to listen on " +
        s.host +
        ", configure tls.certificate_file and tls.private_key_file (or put "
        "a TLS proxy in front and listen on 127.0.0.1)");
  }
  return Status::OK();
}

}  // namespace caseledger::api

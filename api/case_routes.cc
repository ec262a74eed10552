#include "api/case_routes.h"

#include <spdlog/spdlog.h>

#include <array>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <unordered_map>

#include "caseledger/service/replay.h"

namespace caseledger::api {
namespace {

using Json = nlohmann::json;
using domain::Actor;
using domain::Read;

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse WithPointer(HttpResponse r, const std::string& pointer) {
  Json body = Json::parse(r.body);
  body["pointer"] = pointer;
  r.body = body.dump();
  return r;
}

std::string Header(const HttpRequest& req, const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? "" : it->second;
}

// Deepest nesting of arrays and objects, outside strings; stops counting
// past `limit`.
size_t JsonDepth(const std::string& text, size_t limit) {
  size_t depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > limit) return max_depth;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return max_depth;
}

// Parses a JSON request body, or says why not.
StatusOr<Json> ParseBody(const HttpRequest& req, size_t max_depth,
                         HttpResponse* error) {
  std::string type = Header(req, "content-type");
  if (type.substr(0, type.find(';')) != "application/json") {
    *error = Problem(415, "Unsupported Media Type",
                     "the request body must be application/json");
    return Status::InvalidArgument("media type");
  }
  if (JsonDepth(req.body, max_depth) > max_depth) {
    *error = Problem(
        400, "Bad Request",
        "the JSON nests deeper than " + std::to_string(max_depth) + " levels");
    return Status::InvalidArgument("depth");
  }
  Json body = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    *error = Problem(400, "Bad Request", "the request body is not valid JSON");
    return Status::InvalidArgument("json");
  }
  return body;
}

std::string Quote(uint64_t version) {
  return "\"" + std::to_string(version) + "\"";
}

// If-Match: "N" (or N) -> N.
std::optional<uint64_t> ParseIfMatch(const std::string& value, bool* bad) {
  *bad = false;
  if (value.empty()) return std::nullopt;
  std::string v = value;
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    v = v.substr(1, v.size() - 2);
  }
  try {
    size_t used = 0;
    uint64_t n = std::stoull(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  *bad = true;
  return std::nullopt;
}

// The event id an Idempotency-Key stands for: a version 8 UUID from the
// SHA-256 of the actor and the key, so one client's keys never collide with
// another's and a retry of the same request finds the event it wrote.
std::optional<EventId> IdempotentEventId(const Actor& actor,
                                         const std::string& key) {
  if (key.empty() || key.size() > 255) return std::nullopt;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return std::nullopt;
  }
  const std::string hex =
      Sha256Hex("idempotency-key\n" + actor.id + '\n' + key);
  std::array<uint8_t, 16> bytes{};
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] =
        static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0F) | 0x80);  // version 8
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC variant
  return EventId(bytes);
}

// "YYYY-MM" before which learning is released at `now` ("" when at once).
std::string ReleasedBefore(Timestamp now, uint64_t delay_months) {
  if (delay_months == 0) return "";
  const std::string month = FormatTimestamp(now).substr(0, 7);
  const int64_t index = std::stoll(month.substr(0, 4)) * 12 +
                        std::stoll(month.substr(5, 2)) - 1 -
                        static_cast<int64_t>(delay_months - 1);
  const int64_t year = index / 12, month_of_year = index % 12 + 1;
  // (Timestamps are years 1970 to 9999: four digits.)
  return std::to_string(year) + (month_of_year < 10 ? "-0" : "-") +
         std::to_string(month_of_year);
}

// The learning feed as an event stream: each record is one event whose id
// is its feed sequence number. Polled by the session (BodyStream); a comment
// line every `heartbeat` keeps idle connections (and proxies) alive and
// notices a client that has gone. The stream ends when the reader's token
// stops being valid, or on a read error (the client resumes from its last
// id).
class FeedStream final : public BodyStream {
 public:
  FeedStream(const projections::ReadModels& models, TokenRegistry& tokens,
             std::string authorization, uint64_t after,
             std::chrono::milliseconds heartbeat,
             std::function<std::string()> released_before)
      : models_(models),
        tokens_(tokens),
        authorization_(std::move(authorization)),
        after_(after),
        heartbeat_(heartbeat),
        released_before_(std::move(released_before)) {}

  std::optional<std::string> Next() override {
    const auto now = std::chrono::steady_clock::now();
    if (!greeted_) {
      greeted_ = true;
      last_sent_ = now;
      return std::string("retry: 2000\n\n");
    }
    auto actor = tokens_.Authenticate(authorization_);
    if (!actor) return std::nullopt;
    auto page = models_.Feed(after_, 100, released_before_(), actor->id);
    if (!page.ok()) return std::nullopt;
    if (page->records.empty()) {
      if (now - last_sent_ < heartbeat_) return std::string();
      last_sent_ = now;
      return std::string(": keep-alive\n\n");
    }
    std::string out;
    for (const Json& record : page->records) {
      out += "id: " + std::to_string(record.value("seq", uint64_t{0})) +
             "\nevent: learning-record\ndata: " + record.dump() + "\n\n";
    }
    after_ = page->last_seq;
    last_sent_ = now;
    return out;
  }

 private:
  const projections::ReadModels& models_;
  TokenRegistry& tokens_;
  const std::string authorization_;
  uint64_t after_;
  const std::chrono::milliseconds heartbeat_;
  const std::function<std::string()> released_before_;
  bool greeted_ = false;
  std::chrono::steady_clock::time_point last_sent_;
};

// The JSON documents of recently read case states, one per case, kept by
// version (a state at a version is the same for every reader), so that
// reading an unchanged case does not build and serialise its document
// again. Bounded; thread-safe.
class DocumentCache {
 public:
  // The document of `state` (case `id`), made now or kept.
  std::shared_ptr<const std::string> Get(const std::string& id,
                                         const domain::CaseState& state) {
    Shard& s = shards_[std::hash<std::string>()(id) % kShards];
    {
      std::lock_guard<std::mutex> lk(s.mu);
      auto it = s.docs.find(id);
      if (it != s.docs.end() && it->second.first == state.version) {
        return it->second.second;
      }
    }
    auto doc =
        std::make_shared<const std::string>(domain::ToJson(id, state).dump());
    std::lock_guard<std::mutex> lk(s.mu);
    auto it = s.docs.find(id);
    if (it == s.docs.end()) {
      if (s.docs.size() >= kPerShard) s.docs.erase(s.docs.begin());
      s.docs.emplace(id, std::make_pair(state.version, doc));
    } else if (it->second.first < state.version) {
      it->second = {state.version, doc};
    }
    return doc;
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kPerShard = 128;  // a few KiB each
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string,
                       std::pair<uint64_t, std::shared_ptr<const std::string>>>
        docs;
  };
  std::array<Shard, kShards> shards_;
};

class Routes {
 public:
  explicit Routes(CaseRouteDeps& d) : d_(d) {}

  // Authenticates, or answers 401.
  std::optional<Actor> Authenticate(const HttpRequest& req,
                                    const Router::Respond& respond) {
    auto actor = d_.tokens.Authenticate(Header(req, "authorization"));
    if (!actor) {
      HttpResponse r =
          Problem(401, "Unauthorized", "a valid bearer token is required");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      respond(std::move(r));
    }
    return actor;
  }

  // The request's JSON body, or answers why not (415, 400).
  std::optional<Json> ReadBody(const HttpRequest& req,
                               const Router::Respond& respond) {
    HttpResponse error;
    auto body = ParseBody(req, d_.max_json_depth, &error);
    if (!body.ok()) {
      respond(std::move(error));
      return std::nullopt;
    }
    return std::move(*body);
  }

  // For routes that take no parameters: no body, or {}; otherwise answers
  // 400 (or 415) and returns false.
  bool NoParameters(const HttpRequest& req, const char* what,
                    const Router::Respond& respond) {
    if (req.body.empty()) return true;
    auto body = ReadBody(req, respond);
    if (!body) return false;
    if (!body->is_object() || !body->empty()) {
      respond(Problem(400, "Bad Request",
                      std::string(what) + " takes no parameters"));
      return false;
    }
    return true;
  }

  // The month before which learning is released now ("" : everything).
  std::string ReleasedNow() const {
    return ReleasedBefore(d_.clock(), d_.feed_release_delay_months);
  }

  static HttpResponse Forbidden() {
    return Problem(403, "Forbidden", "you may not do this");
  }

  // For the admin routes: authenticates, and answers 403 unless an admin.
  std::optional<Actor> AuthorizeAdmin(const HttpRequest& req,
                                      const Router::Respond& respond) {
    auto actor = Authenticate(req, respond);
    if (actor && !domain::MayRead(actor->role, Read::kAdmin)) {
      respond(Forbidden());
      return std::nullopt;
    }
    return actor;
  }

  // For routes served from the read models: authenticates, checks the
  // role's read, and that there are read models; otherwise answers.
  std::optional<Actor> AuthorizeModelRead(const HttpRequest& req, Read read,
                                          const Router::Respond& respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return std::nullopt;
    if (!domain::MayRead(actor->role, read)) {
      respond(Forbidden());
      return std::nullopt;
    }
    if (!d_.models) {
      respond(Problem(503, "Service Unavailable", "no read models"));
      return std::nullopt;
    }
    return actor;
  }

  // POST /v1/cases and POST /v1/cases/{id}/commands/{command}.
  void Command(const HttpRequest& req, std::string case_id, std::string command,
               Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    if (!domain::MayCommand(actor->role, command)) {
      respond(domain::EventTypeOf(command).empty()
                  ? Problem(404, "Not Found", "no command '" + command + "'")
                  : Forbidden());
      return;
    }
    auto body = ReadBody(req, respond);
    if (!body) return;
    bool bad_if_match = false;
    service::CommandOptions options;
    options.expected_version =
        ParseIfMatch(Header(req, "if-match"), &bad_if_match);
    if (bad_if_match) {
      respond(Problem(400, "Bad Request", "If-Match must be a case version"));
      return;
    }
    const bool keyed = req.headers.count("idempotency-key") > 0;
    if (keyed) {
      auto id = IdempotentEventId(*actor, Header(req, "idempotency-key"));
      if (!id) {
        respond(WithPointer(
            Problem(400, "Bad Request",
                    "Idempotency-Key must be 1 to 255 visible ASCII "
                    "characters"),
            "Idempotency-Key"));
        return;
      }
      options.event_id = *id;
      // A retried report names the same case as the first try.
      if (command == "report") case_id = "case-" + id->ToString();
      // The request the key was first used for: a retry must match it.
      options.causation_id = "request:" + Sha256Hex(command + '\n' + case_id +
                                                    '\n' + body->dump());
    }
    options.correlation_id = Header(req, "x-correlation-id").substr(0, 128);
    options.deadline = (req.received == std::chrono::steady_clock::time_point{}
                            ? std::chrono::steady_clock::now()
                            : req.received) +
                       d_.command_budget;
    const bool created = command == "report";
    // Deciding reads the case: do it on a worker thread. The durable append
    // then joins the store's group commit without holding the worker, and
    // the answer is built on a worker once the fsync is done.
    auto answer = [options, created, respond = std::move(respond)](
                      StatusOr<service::CommandResult> r) {
      if (!r.ok()) {
        if (options.event_id &&
            r.status().code() == StatusCode::kAlreadyExists) {
          respond(Problem(422, "Unprocessable Content",
                          "this Idempotency-Key was used for a different "
                          "request"));
          return;
        }
        respond(ProblemFromStatus(r.status(),
                                  options.expected_version.has_value()));
        return;
      }
      Json ids = Json::array();
      for (const auto& id : r->event_ids) ids.push_back(id.ToString());
      HttpResponse resp = JsonResponse(created && !r->deduplicated ? 201 : 200,
                                       {{"case_id", r->case_id},
                                        {"version", r->version},
                                        {"position", r->position},
                                        {"deduplicated", r->deduplicated},
                                        {"event_ids", std::move(ids)}});
      resp.headers.emplace_back("ETag", Quote(r->version));
      if (created) {
        resp.headers.emplace_back("Location", "/v1/cases/" + r->case_id);
      }
      respond(std::move(resp));
    };
    d_.workers.Post(
        [this, case_id = std::move(case_id), command = std::move(command),
         body = std::move(*body), actor = *actor, options,
         answer = std::move(answer), request_id = req.request_id]() mutable {
          d_.service.ExecuteAsync(
              std::move(case_id), std::move(command), std::move(body),
              std::move(actor), std::move(options),
              [this, request_id](std::function<void()> work) {
                d_.workers.Post(std::move(work), request_id);
              },
              std::move(answer));
        },
        req.request_id);
  }

  // Loads the case and checks that the actor may make `read` of it. A
  // refusal never says whether the case exists unless the role may know.
  std::shared_ptr<const domain::CaseState> LoadForRead(
      const std::string& id, const Actor& actor, Read read,
      const Router::Respond& respond) {
    if (!domain::MayRead(actor.role, read) || !ValidateStreamId(id).ok()) {
      respond(Forbidden());
      return nullptr;
    }
    auto loaded = d_.service.LoadShared(id);
    if (!loaded.ok()) {
      respond(ProblemFromStatus(loaded.status()));
      return nullptr;
    }
    std::shared_ptr<const domain::CaseState> state = std::move(*loaded);
    if (state->stage == domain::Stage::kNone) {
      // Reporters learn nothing about cases that are not theirs.
      respond(actor.role == domain::Role::kReporter
                  ? Forbidden()
                  : Problem(404, "Not Found", "no such case"));
      return nullptr;
    }
    if (!domain::CanReadCase(*state, actor, read)) {
      respond(Forbidden());
      return nullptr;
    }
    return state;
  }

  void GetCase(const HttpRequest& req, const std::string& id,
               Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    auto state = LoadForRead(id, *actor, Read::kCaseState, respond);
    if (!state) return;
    HttpResponse r;
    if (actor->role == domain::Role::kReporter) {
      r = JsonResponse(200, {{"case_id", id},
                             {"version", state->version},
                             {"stage", domain::StageName(state->stage)}});
    } else {
      r.body = *documents_.Get(id, *state);
    }
    r.headers.emplace_back("ETag", Quote(state->version));
    RecordThenRespond(*actor, id, "state", std::move(r), std::move(respond));
  }

  void GetHistory(const HttpRequest& req, const std::string& id,
                  Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    auto state = LoadForRead(id, *actor, Read::kCaseHistory, respond);
    if (!state) return;
    Json events = Json::array();
    Status read = ForEachInStream(
        d_.store, id, StreamVersion(1), 0, [&](const RecordedEvent& e) {
          events.push_back(
              {{"event_id", e.event_id.ToString()},
               {"version", e.version.value()},
               {"position", e.position.value()},
               {"type", e.type},
               {"schema_version", e.schema_version},
               {"recorded_at", FormatTimestamp(e.recorded_at)},
               {"occurred_at", FormatTimestamp(e.occurred_at)},
               {"actor", {{"id", e.actor.id}, {"role", e.actor.role}}},
               {"correlation_id", e.correlation_id},
               {"causation_id", e.causation_id},
               {"payload", service::ParseStoredJson(e.payload)},
               {"case_hash", HashToHex(e.case_hash)},
               {"log_hash", HashToHex(e.log_hash)}});
          return Status::OK();
        });
    if (!read.ok()) {
      respond(ProblemFromStatus(read));
      return;
    }
    HttpResponse r = JsonResponse(200, {{"case_id", id}, {"events", events}});
    r.headers.emplace_back("ETag", Quote(state->version));
    RecordThenRespond(*actor, id, "history", std::move(r), std::move(respond));
  }

  void GetVerify(const HttpRequest& req, const std::string& id,
                 Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    // Only case streams (not the token or access streams), and not by an
    // actor barred from the case: even a count of events says something.
    if (!service::IsCaseStream(id)) {
      respond(Forbidden());
      return;
    }
    if (!LoadForRead(id, *actor, Read::kCaseVerify, respond)) return;
    auto report = d_.store.Verify(id);
    if (!report.ok()) {
      respond(ProblemFromStatus(report.status()));
      return;
    }
    Json body = {{"case_id", id},
                 {"ok", report->ok},
                 {"events_checked", report->events_checked}};
    if (report->first_broken) {
      body["first_broken"] = {
          {"position", report->first_broken->position.value()},
          {"version", report->first_broken->version.value()},
          {"reason", report->first_broken->reason}};
    }
    respond(JsonResponse(200, body));
  }

  // GET /v1/cases: a page of case summaries from the read model, filtered
  // by stage, lead, urgency, category, or acknowledgement overdue; a
  // reporter sees only the cases they reported; no one sees a case they are
  // barred from. ?after_position=N waits (up to 2 s) for the read model to
  // include the caller's own write.
  void ListCases(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeModelRead(req, Read::kCaseList, respond);
    if (!actor) return;
    auto q = QueryParams(req.target);
    projections::CaseFilter f;
    if (q.count("stage")) f.stage = q["stage"];
    if (q.count("lead")) f.lead = q["lead"];
    if (q.count("urgency")) f.urgency = q["urgency"];
    if (q.count("category")) f.category = q["category"];
    if (q.count("overdue")) {
      if (q["overdue"] != "acknowledgement") {
        respond(WithPointer(
            Problem(400, "Bad Request", "overdue must be 'acknowledgement'"),
            "overdue"));
        return;
      }
      f.ack_overdue = true;
      f.now = d_.clock();
    }
    if (actor->role == domain::Role::kReporter) f.reporter = actor->id;
    f.reader = *actor;
    size_t limit = 50;
    if (q.count("limit")) {
      bool bad = false;
      auto n = ParseIfMatch(q["limit"], &bad);
      if (bad || !n || *n == 0 || *n > 500) {
        respond(WithPointer(
            Problem(400, "Bad Request", "limit must be 1 to 500"), "limit"));
        return;
      }
      limit = static_cast<size_t>(*n);
    }
    if (q.count("after_position")) {
      bool bad = false;
      auto pos = ParseIfMatch(q["after_position"], &bad);
      if (bad || !pos) {
        respond(WithPointer(Problem(400, "Bad Request",
                                    "after_position must be a log position"),
                            "after_position"));
        return;
      }
      if (!d_.models->WaitFor(GlobalPosition(*pos), std::chrono::seconds(2))) {
        HttpResponse r =
            Problem(503, "Service Unavailable",
                    "the read model has not reached that position yet");
        r.headers.emplace_back("Retry-After", "1");
        respond(std::move(r));
        return;
      }
    }
    auto page =
        d_.models->ListCases(f, q.count("cursor") ? q["cursor"] : "", limit);
    if (!page.ok()) {
      respond(ProblemFromStatus(page.status()));
      return;
    }
    Json items = Json::array();
    std::vector<std::string> listed;
    for (const Json& doc : page->cases) {
      listed.push_back(doc.value("case_id", ""));
      if (actor->role == domain::Role::kReporter) {
        // As for one case: a reporter sees no more than where it stands.
        items.push_back({{"case_id", doc["case_id"]},
                         {"stage", doc["stage"]},
                         {"version", doc["version"]}});
        continue;
      }
      items.push_back(
          {{"case_id", doc["case_id"]},
           {"stage", doc["stage"]},
           {"urgent", doc["urgent"]},
           {"version", doc["version"]},
           {"lead_actor_id", doc["lead_actor_id"]},
           {"reported_at", doc["reported_at"]},
           {"acknowledgement_due_at", doc["acknowledgement_due_at"]},
           {"categories", doc["categories"]}});
    }
    HttpResponse r = JsonResponse(
        200, {{"cases", items},
              {"next_cursor", page->next_cursor},
              {"projection_position", d_.models->Health().position}});
    if (!page->next_cursor.empty()) {
      std::string next = "/v1/cases?cursor=" + page->next_cursor +
                         "&limit=" + std::to_string(limit);
      for (const char* k :
           {"stage", "lead", "urgency", "category", "overdue"}) {
        if (q.count(k)) next += std::string("&") + k + "=" + q[k];
      }
      r.headers.emplace_back("Link", "<" + next + ">; rel=\"next\"");
    }
    // A row of a list is a read of the case too.
    RecordThenRespond(*actor, listed, "list", std::move(r), std::move(respond));
  }

  // GET /v1/governance/overview, /v1/governance/{view},
  // /v1/governance/sample?month=YYYY-MM[&size=N&seed=S]. Case ids only, and
  // none the reader is barred from.
  void GetGovernance(const HttpRequest& req, const std::string& view,
                     Router::Respond respond) {
    auto actor = AuthorizeModelRead(req, Read::kGovernance, respond);
    if (!actor) return;
    auto q = QueryParams(req.target);
    StatusOr<Json> out = Status::OK();
    if (view == "overview") {
      out = d_.models->Overview(d_.clock());
    } else if (view == "sample") {
      static const std::regex kMonth(R"(^[0-9]{4}-(0[1-9]|1[0-2])$)");
      if (!q.count("month") || !std::regex_match(q["month"], kMonth)) {
        respond(WithPointer(
            Problem(400, "Bad Request", "month must be YYYY-MM"), "month"));
        return;
      }
      size_t size = 10;
      if (q.count("size")) {
        bool bad = false;
        auto n = ParseIfMatch(q["size"], &bad);
        if (bad || !n || *n == 0 || *n > 200) {
          respond(WithPointer(
              Problem(400, "Bad Request", "size must be 1 to 200"), "size"));
          return;
        }
        size = static_cast<size_t>(*n);
      }
      out = d_.models->AuditSample(q["month"], size,
                                   q.count("seed") ? q["seed"] : "caseledger");
    } else {
      out = d_.models->Governance(view, d_.clock(), 500);
    }
    if (!out.ok()) {
      respond(ProblemFromStatus(out.status()));
      return;
    }
    // A DSL barred from a case does not see it listed.
    for (const char* list : {"items", "cases"}) {
      if (!out->contains(list)) continue;
      Json kept = Json::array();
      for (const auto& item : (*out)[list]) {
        auto doc = d_.models->Case(item.value("case_id", ""));
        if (!doc.ok()) {  // closed: no answer rather than an unchecked one
          respond(ProblemFromStatus(doc.status()));
          return;
        }
        if (doc->has_value() && !projections::BarredFrom(**doc, *actor)) {
          kept.push_back(item);
        }
      }
      (*out)[list] = kept;
    }
    respond(JsonResponse(200, *out));
  }

  // GET /v1/learning/feed?after=SEQ&limit=N: the anonymised feed.
  void GetFeed(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeModelRead(req, Read::kLearningFeed, respond);
    if (!actor) return;
    auto q = QueryParams(req.target);
    uint64_t after = 0;
    size_t limit = 100;
    bool bad = false;
    if (q.count("after")) {
      auto a = ParseIfMatch(q["after"], &bad);
      if (bad || !a) {
        respond(WithPointer(
            Problem(400, "Bad Request", "after must be a feed sequence number"),
            "after"));
        return;
      }
      after = *a;
    }
    if (q.count("limit")) {
      auto n = ParseIfMatch(q["limit"], &bad);
      if (bad || !n || *n == 0 || *n > 1000) {
        respond(WithPointer(
            Problem(400, "Bad Request", "limit must be 1 to 1000"), "limit"));
        return;
      }
      limit = static_cast<size_t>(*n);
    }
    auto page = d_.models->Feed(after, limit, ReleasedNow(), actor->id);
    if (!page.ok()) {
      respond(ProblemFromStatus(page.status()));
      return;
    }
    HttpResponse r = JsonResponse(
        200, {{"records", page->records}, {"last_seq", page->last_seq}});
    if (page->records.size() == limit) {
      r.headers.emplace_back(
          "Link", "</v1/learning/feed?after=" + std::to_string(page->last_seq) +
                      "&limit=" + std::to_string(limit) + ">; rel=\"next\"");
    }
    respond(std::move(r));
  }

  // GET /v1/learning/stream: the feed as Server-Sent Events, from the
  // record after Last-Event-ID (a reconnecting client's last seen sequence
  // number) or ?after=SEQ, then live as records are added.
  void GetFeedStream(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeModelRead(req, Read::kLearningFeed, respond);
    if (!actor) return;
    auto q = QueryParams(req.target);
    std::string from = Header(req, "last-event-id");
    const char* field = "Last-Event-ID";
    if (from.empty() && q.count("after")) {
      from = q["after"];
      field = "after";
    }
    uint64_t after = 0;
    if (!from.empty()) {
      bool bad = false;
      auto a = ParseIfMatch(from, &bad);
      if (bad || !a) {
        respond(WithPointer(
            Problem(400, "Bad Request",
                    std::string(field) + " must be a feed sequence number"),
            field));
        return;
      }
      after = *a;
    }
    HttpResponse r;
    r.content_type = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-store");
    r.stream = std::make_shared<FeedStream>(
        *d_.models, d_.tokens, Header(req, "authorization"), after,
        d_.stream_heartbeat, [this] { return ReleasedNow(); });
    respond(std::move(r));
  }

  // POST /v1/admin/tokens/revoke {"token": ...} or {"actor_id": ...}:
  // revokes at once, on the log; open streams of the token end.
  void RevokeToken(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeAdmin(req, respond);
    if (!actor) return;
    auto body = ReadBody(req, respond);
    if (!body) return;
    const bool has_token = body->contains("token");
    const bool has_actor = body->contains("actor_id");
    if (!body->is_object() || has_token == has_actor || body->size() != 1 ||
        !(has_token ? (*body)["token"] : (*body)["actor_id"]).is_string()) {
      respond(WithPointer(
          Problem(400, "Bad Request",
                  "name exactly one of \"token\" or \"actor_id\", a string"),
          has_token ? "/token" : (has_actor ? "/actor_id" : "")));
      return;
    }
    std::string token = has_token ? (*body)["token"].get<std::string>() : "";
    std::string actor_id =
        has_actor ? (*body)["actor_id"].get<std::string>() : "";
    d_.workers.Post(
        [this, token = std::move(token), actor_id = std::move(actor_id),
         by = actor->id, respond = std::move(respond)]() mutable {
          auto revoked = RevokeTokens(d_.store, token, actor_id, by);
          if (!revoked.ok()) {
            respond(ProblemFromStatus(revoked.status()));
            return;
          }
          // Take it into account now, not at the next request.
          (void)d_.tokens.Refresh();
          respond(JsonResponse(200, {{"revoked", *revoked}}));
        },
        req.request_id);
  }

  // POST /v1/admin/backups (no body, or {}): a consistent copy of the store
  // in the configured backup directory.
  void CreateBackup(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeAdmin(req, respond);
    if (!actor || !NoParameters(req, "a backup", respond)) return;
    if (!d_.backup) {
      respond(Problem(503, "Service Unavailable",
                      "backups are not configured on this server"));
      return;
    }
    // A checkpoint flushes and links files: not on an I/O thread.
    d_.workers.Post(
        [this, by = actor->id, respond = std::move(respond)]() mutable {
          auto made = d_.backup();
          if (!made.ok()) {
            respond(ProblemFromStatus(made.status()));
            return;
          }
          d_.logger->info("backup by {}: {}", by, made->dump());
          respond(JsonResponse(201, *made));
        },
        req.request_id);
  }

  // POST /v1/admin/store/resume (no body, or {}): appends again after a
  // failed write, now rather than at the store's next own try. 200 with the
  // log position when appends may go on; otherwise the failure (507 while
  // the disk is still full).
  void ResumeStore(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeAdmin(req, respond);
    if (!actor || !NoParameters(req, "resuming", respond)) return;
    // Resuming flushes RocksDB's memtables: not on an I/O thread.
    d_.workers.Post(
        [this, by = actor->id, respond = std::move(respond)]() mutable {
          Status s = d_.store.Resume();
          d_.logger->info("store resume by {}: {}", by, s.ToString());
          if (!s.ok()) {
            respond(ProblemFromStatus(s));
            return;
          }
          respond(JsonResponse(
              200, {{"writable", true},
                    {"log_position", d_.store.committed_position().value()}}));
        },
        req.request_id);
  }

  // GET /v1/learning/summary: counts with small numbers suppressed.
  void GetSummary(const HttpRequest& req, Router::Respond respond) {
    auto actor = AuthorizeModelRead(req, Read::kLearningFeed, respond);
    if (!actor) return;
    projections::SummaryOptions options = d_.summary;
    options.released_before = ReleasedNow();
    auto summary = d_.models->Summary(options);
    if (!summary.ok()) {
      respond(ProblemFromStatus(summary.status()));
      return;
    }
    respond(JsonResponse(200, *summary));
  }

  // Every read of a case's contents is recorded (who, when, what) on the
  // case's access stream before the answer goes out: no record, no read.
  // The records wait for the store's group commit, never on an I/O thread.
  void RecordThenRespond(const Actor& actor, const std::string& case_id,
                         const char* what, HttpResponse response,
                         Router::Respond respond) {
    RecordThenRespond(actor, std::vector<std::string>{case_id}, what,
                      std::move(response), std::move(respond));
  }
  void RecordThenRespond(const Actor& actor,
                         const std::vector<std::string>& case_ids,
                         const char* what, HttpResponse response,
                         Router::Respond respond) {
    if (case_ids.empty()) {
      respond(std::move(response));
      return;
    }
    // One append per case (each its own access stream), answered when the
    // last is durable; any failure answers with it instead.
    struct Pending {
      std::mutex mu;
      size_t left;
      Status failure = Status::OK();
      HttpResponse response;
      Router::Respond respond;
    };
    auto pending = std::make_shared<Pending>();
    pending->left = case_ids.size();
    pending->response = std::move(response);
    pending->respond = std::move(respond);
    for (const std::string& case_id : case_ids) {
      ProposedEvent e;
      e.type = "CaseRead";
      e.actor = caseledger::Actor{actor.id,
                                  std::string(domain::RoleName(actor.role))};
      e.occurred_at = NowUtc();
      e.payload = Json{{"case_id", case_id}, {"read", what}}.dump();
      d_.store.AppendAsync(
          service::AccessStreamOf(case_id), ExpectedVersion::Any(),
          {std::move(e)}, [pending](StatusOr<AppendResult> r) {
            std::unique_lock<std::mutex> lk(pending->mu);
            if (!r.ok() && pending->failure.ok()) pending->failure = r.status();
            if (--pending->left > 0) return;
            lk.unlock();
            pending->respond(pending->failure.ok()
                                 ? std::move(pending->response)
                                 : ProblemFromStatus(pending->failure));
          });
    }
  }

  // GET /v1/cases/{id}/access-log: who read the case, when, what.
  void GetAccessLog(const HttpRequest& req, const std::string& id,
                    Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    auto state = LoadForRead(id, *actor, Read::kCaseAccessLog, respond);
    if (!state) return;
    Json entries = Json::array();
    Status read = ForEachInStream(
        d_.store, service::AccessStreamOf(id), StreamVersion(1), 0,
        [&](const RecordedEvent& e) {
          Json p = service::ParseStoredJson(e.payload);
          entries.push_back(
              {{"who", {{"id", e.actor.id}, {"role", e.actor.role}}},
               {"when", FormatTimestamp(e.recorded_at)},
               {"what", p.is_object() ? p.value("read", "") : ""},
               {"position", e.position.value()}});
          return Status::OK();
        });
    if (!read.ok()) {
      respond(ProblemFromStatus(read));
      return;
    }
    respond(JsonResponse(200, {{"case_id", id}, {"reads", entries}}));
  }

  // GET /v1/cases/{id}/replay?at=VERSION|until=TIME, and .../replay/steps.
  void GetReplay(const HttpRequest& req, const std::string& id, bool steps,
                 Router::Respond respond) {
    auto actor = Authenticate(req, respond);
    if (!actor) return;
    auto state = LoadForRead(id, *actor, Read::kCaseReplay, respond);
    if (!state) return;
    auto q = QueryParams(req.target);
    service::ReplayPoint point;
    if (q.count("at")) {
      bool bad = false;
      point.at_version = ParseIfMatch(q["at"], &bad);
      if (bad || !point.at_version || *point.at_version == 0) {
        respond(WithPointer(Problem(400, "Bad Request",
                                    "at must be a case version (1 or more)"),
                            "at"));
        return;
      }
    }
    if (q.count("until")) {
      auto t = ParseTimestamp(q["until"]);
      if (!t.ok()) {
        respond(WithPointer(Problem(400, "Bad Request", t.status().message()),
                            "until"));
        return;
      }
      point.until = *t;
    }
    auto body = steps ? service::ReplaySteps(d_.store, d_.service, id, point)
                      : service::ReplayState(d_.store, d_.service, id, point);
    if (!body.ok()) {
      respond(ProblemFromStatus(body.status()));
      return;
    }
    RecordThenRespond(*actor, id, steps ? "replay_steps" : "replay",
                      JsonResponse(200, *body), std::move(respond));
  }

  // POST /v1/cases: the server names the case, an opaque, unguessable id.
  void Report(const HttpRequest& req, Router::Respond respond) {
    Command(req, "case-" + EventId::NewV7().ToString(), "report",
            std::move(respond));
  }
  void GetReplayState(const HttpRequest& req, const std::string& id,
                      Router::Respond respond) {
    GetReplay(req, id, false, std::move(respond));
  }
  void GetReplaySteps(const HttpRequest& req, const std::string& id,
                      Router::Respond respond) {
    GetReplay(req, id, true, std::move(respond));
  }

 private:
  CaseRouteDeps& d_;
  DocumentCache documents_;
};

}  // namespace

HttpResponse ProblemFromStatus(const Status& s, bool pinned) {
  switch (s.code()) {
    case StatusCode::kOk:
      return Problem(500, "Internal Server Error", "no error to report");
    case StatusCode::kInvalidArgument: {
      HttpResponse r = Problem(400, "Bad Request", s.message());
      return s.field() ? WithPointer(std::move(r), *s.field()) : r;
    }
    case StatusCode::kNotFound:
      return Problem(404, "Not Found", s.message());
    case StatusCode::kAlreadyExists:
      return Problem(409, "Conflict", s.message());
    case StatusCode::kAborted: {
      HttpResponse r =
          Problem(pinned ? 412 : 409,
                  pinned ? "Precondition Failed" : "Conflict", s.message());
      if (s.current_version()) {
        Json body = Json::parse(r.body);
        body["current_version"] = *s.current_version();
        r.body = body.dump();
        r.headers.emplace_back("ETag", Quote(*s.current_version()));
      }
      return r;
    }
    case StatusCode::kPermissionDenied:
      return Problem(403, "Forbidden", s.message());
    case StatusCode::kFailedPrecondition:
      return Problem(409, "Conflict", s.message());
    case StatusCode::kUnavailable: {
      HttpResponse r = Problem(503, "Service Unavailable", s.message());
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    case StatusCode::kNoSpace: {
      // RFC 4918 11.5; the store resumes by itself once space is freed.
      HttpResponse r = Problem(
          507, "Insufficient Storage",
          "the server's storage is full: nothing was written. It resumes by "
          "itself once an operator frees space; retry later");
      r.headers.emplace_back("Retry-After", "30");
      return r;
    }
    case StatusCode::kIOError:
    case StatusCode::kCorruption:
      // Storage detail stays in the server's log, not in the answer.
      return Problem(500, "Internal Server Error",
                     "the store could not complete the request");
  }
  return Problem(500, "Internal Server Error", "unknown error");
}

void AddCaseRoutes(Router& router, CaseRouteDeps& deps) {
  auto routes = std::make_shared<Routes>(deps);
  // The request log names the actor behind a valid token (never the token).
  router.SetIdentify([&tokens = deps.tokens](const HttpRequest& req) {
    auto it = req.headers.find("authorization");
    if (it == req.headers.end()) return std::string("-");
    auto actor = tokens.Authenticate(it->second);
    return actor ? actor->id : std::string("invalid-token");
  });
  router.AddAsync("GET", "/v1/governance/overview",
                  [routes](const HttpRequest& req, const PathParams&,
                           Router::Respond respond) {
                    routes->GetGovernance(req, "overview", std::move(respond));
                  });
  router.AddAsync("GET", "/v1/governance/sample",
                  [routes](const HttpRequest& req, const PathParams&,
                           Router::Respond respond) {
                    routes->GetGovernance(req, "sample", std::move(respond));
                  });
  router.AddAsync("GET", "/v1/governance/{view}",
                  [routes](const HttpRequest& req, const PathParams& p,
                           Router::Respond respond) {
                    routes->GetGovernance(req, p.at("view"),
                                          std::move(respond));
                  });
  // Routes that call one member, on the collection or on one case.
  using OnCollection = void (Routes::*)(const HttpRequest&, Router::Respond);
  using OnCase =
      void (Routes::*)(const HttpRequest&, const std::string&, Router::Respond);
  auto collection = [&](const char* method, const char* pattern,
                        OnCollection fn) {
    router.AddAsync(method, pattern,
                    [routes, fn](const HttpRequest& req, const PathParams&,
                                 Router::Respond respond) {
                      ((*routes).*fn)(req, std::move(respond));
                    });
  };
  auto one_case = [&](const char* pattern, OnCase fn) {
    router.AddAsync("GET", pattern,
                    [routes, fn](const HttpRequest& req, const PathParams& p,
                                 Router::Respond respond) {
                      ((*routes).*fn)(req, p.at("id"), std::move(respond));
                    });
  };
  collection("GET", "/v1/learning/feed", &Routes::GetFeed);
  collection("GET", "/v1/learning/summary", &Routes::GetSummary);
  collection("GET", "/v1/learning/stream", &Routes::GetFeedStream);
  collection("GET", "/v1/cases", &Routes::ListCases);
  collection("POST", "/v1/cases", &Routes::Report);
  collection("POST", "/v1/admin/tokens/revoke", &Routes::RevokeToken);
  collection("POST", "/v1/admin/backups", &Routes::CreateBackup);
  collection("POST", "/v1/admin/store/resume", &Routes::ResumeStore);
  router.AddAsync("POST", "/v1/cases/{id}/commands/{command}",
                  [routes](const HttpRequest& req, const PathParams& p,
                           Router::Respond respond) {
                    if (p.at("command") == "report") {
                      respond(Problem(404, "Not Found",
                                      "report a concern with POST /v1/cases"));
                      return;
                    }
                    routes->Command(req, p.at("id"), p.at("command"),
                                    std::move(respond));
                  });
  one_case("/v1/cases/{id}", &Routes::GetCase);
  one_case("/v1/cases/{id}/history", &Routes::GetHistory);
  one_case("/v1/cases/{id}/replay", &Routes::GetReplayState);
  one_case("/v1/cases/{id}/replay/steps", &Routes::GetReplaySteps);
  one_case("/v1/cases/{id}/access-log", &Routes::GetAccessLog);
  one_case("/v1/cases/{id}/verify", &Routes::GetVerify);
}

}  // namespace caseledger::api

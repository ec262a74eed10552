#include <chrono>
#include <functional>
#include <utility>

#include "api/render.h"
#include "api/routes.h"

namespace caseledger::api {

namespace {

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

}  // namespace

// "YYYY-MM" before which learning is released at `now` ("" when at once).
std::string ReleasedBefore(Timestamp now, uint64_t delay_months) {
  if (delay_months == 0) return "";
  const std::string month = MonthOf(now);
  const int64_t index = std::stoll(month.substr(0, 4)) * 12 +
                        std::stoll(month.substr(5, 2)) - 1 -
                        static_cast<int64_t>(delay_months - 1);
  const int64_t year = index / 12, month_of_year = index % 12 + 1;
  // (Timestamps are years 1970 to 9999: four digits.)
  return std::to_string(year) + (month_of_year < 10 ? "-0" : "-") +
         std::to_string(month_of_year);
}

void Routes::GetFeed(const HttpRequest& req, const Router::Respond& respond) {
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
  if (!QueryLimit(q, 1000, &limit, respond)) return;
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

void Routes::GetFeedStream(const HttpRequest& req,
                           const Router::Respond& respond) {
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

void Routes::GetSummary(const HttpRequest& req,
                        const Router::Respond& respond) {
  auto actor = AuthorizeModelRead(req, Read::kLearningFeed, respond);
  if (!actor) return;
  projections::SummaryOptions options = d_.summary;
  options.released_before = ReleasedNow();
  auto summary = d_.models->Summary(options);
  if (!summary.ok()) {
    respond(ProblemFromStatus(summary.status()));
    return;
  }
  respond(JsonResponse(200, ToJson(*summary)));
}

}  // namespace caseledger::api

#include <mutex>
#include <utility>

#include "api/routes.h"
#include "caseledger/service/replay.h"

namespace caseledger::api {

std::shared_ptr<const domain::CaseState> Routes::LoadForRead(
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

void Routes::GetCase(const HttpRequest& req, const std::string& id,
                     const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  auto state = LoadForRead(id, *actor, Read::kCaseState, respond);
  if (!state) return;
  HttpResponse r;
  if (actor->role == domain::Role::kReporter) {
    r = JsonResponse(200,
                     {{"case_id", id},
                      {"version", state->version},
                      {"stage", domain::StageName(state->stage)},
                      {"reported_at", FormatTimestamp(state->reported_at)}});
  } else {
    r.body = *documents_.Get(id, *state);
  }
  r.headers.emplace_back("ETag", Quote(state->version));
  RecordThenRespond(*actor, service::CaseReadKind::kState,
                    {{id, state->version}}, std::move(r), respond);
}

void Routes::GetHistory(const HttpRequest& req, const std::string& id,
                        const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  auto state = LoadForRead(id, *actor, Read::kCaseHistory, respond);
  if (!state) return;
  Json events = Json::array();
  Status read = ForEachInStream(
      d_.store, id, StreamVersion(1), 0, [&](const RecordedEvent& e) {
        // Every role that may read the history may see what it recorded:
        // its sealed fields are opened (erased ones read "[erased]").
        Json payload = service::ParseStoredJson(e.payload);
        RETURN_IF_ERROR(
            d_.service.sealer().UnsealEvent(id, e.event_id, &payload));
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
             {"payload", std::move(payload)},
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
  RecordThenRespond(*actor, service::CaseReadKind::kHistory,
                    {{id, state->version}}, std::move(r), respond);
}

void Routes::GetVerify(const HttpRequest& req, const std::string& id,
                       const Router::Respond& respond) {
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

void Routes::RecordThenRespond(const Actor& actor, service::CaseReadKind what,
                               const std::vector<service::CaseShown>& shown,
                               HttpResponse response,
                               const Router::Respond& respond) {
  // (Shared: the callback is a std::function, which must be copyable.)
  auto answer = std::make_shared<HttpResponse>(std::move(response));
  auto then = [answer, respond](const Status& recorded) {
    respond(recorded.ok() ? std::move(*answer) : ProblemFromStatus(recorded));
  };
  if (d_.forward_reads) {
    auto records =
        service::PrepareCaseReads(d_.service.catalog(), actor, what, shown);
    if (!records.ok()) {
      then(records.status());
      return;
    }
    d_.forward_reads(std::move(*records), then);
    return;
  }
  service::RecordCaseReads(d_.store, d_.service.catalog(), actor, what, shown,
                           then);
}

void Routes::GetAccessLog(const HttpRequest& req, const std::string& id,
                          const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  auto state = LoadForRead(id, *actor, Read::kCaseAccessLog, respond);
  if (!state) return;
  auto log = service::ReadAccessLog(d_.store, id);
  if (!log.ok()) {
    respond(ProblemFromStatus(log.status()));
    return;
  }
  Json entries = Json::array();
  for (const service::AccessRecord& r : *log) {
    Json entry = {{"who", {{"id", r.actor_id}, {"role", r.role}}},
                  {"when", FormatTimestamp(r.when)},
                  {"what", r.what},
                  {"position", r.position}};
    if (r.version) entry["version"] = *r.version;
    entries.push_back(std::move(entry));
  }
  respond(JsonResponse(200, {{"case_id", id}, {"reads", entries}}));
}

void Routes::GetReplay(const HttpRequest& req, const std::string& id,
                       bool steps, const Router::Respond& respond) {
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
      respond(WithPointer(
          Problem(400, "Bad Request", "at must be a case version (1 or more)"),
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
  // The version shown: the replayed state's, or the last step's.
  uint64_t shown = 0;
  if (steps) {
    const Json& all = body->value("steps", Json::array());
    if (!all.empty()) shown = all.back().value("version", uint64_t{0});
  } else {
    shown = body->value("version", uint64_t{0});
  }
  RecordThenRespond(*actor,
                    steps ? service::CaseReadKind::kReplaySteps
                          : service::CaseReadKind::kReplay,
                    {{id, shown}}, JsonResponse(200, *body), respond);
}

void Routes::GetExport(const HttpRequest& req, const std::string& id,
                       const Router::Respond& respond) {
  auto actor = Authenticate(req, respond);
  if (!actor) return;
  auto state = LoadForRead(id, *actor, Read::kCaseExport, respond);
  if (!state) return;
  auto q = QueryParams(req.target);
  std::optional<std::string> person;
  if (q.count("person")) {
    if (!ValidateStreamId(q["person"]).ok() || q["person"].size() > 128) {
      respond(WithPointer(
          Problem(400, "Bad Request", "person must be a person_ref"),
          "person"));
      return;
    }
    person = q["person"];
  }
  auto body = service::ExportCase(d_.store, d_.service, id, person);
  if (!body.ok()) {
    respond(ProblemFromStatus(body.status()));
    return;
  }
  const uint64_t shown = body->value("version", uint64_t{0});
  RecordThenRespond(*actor, service::CaseReadKind::kExport, {{id, shown}},
                    JsonResponse(200, *body), respond);
}

void Routes::GetReplayState(const HttpRequest& req, const std::string& id,
                            const Router::Respond& respond) {
  GetReplay(req, id, false, respond);
}

void Routes::GetReplaySteps(const HttpRequest& req, const std::string& id,
                            const Router::Respond& respond) {
  GetReplay(req, id, true, respond);
}

}  // namespace caseledger::api

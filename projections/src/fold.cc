#include "projections/src/fold.h"

#include <optional>
#include <string_view>
#include <utility>

#include "caseledger/domain/evolve_in_place.h"
#include "caseledger/service/case_service.h"
#include "projections/src/layout.h"
#include "projections/src/learning_rules.h"

namespace caseledger::projections::internal {

namespace {

// A string member of a payload, from its document or from simdjson's parse
// of it: "" if it is absent or not a string; a key given twice reads as its
// last value (as nlohmann's parser keeps it).
std::string StringMember(const Json& p, const char* key) {
  auto it = p.find(key);
  return it != p.end() && it->is_string() ? it->get<std::string>() : "";
}
std::optional<simdjson::dom::element> MemberOf(const simdjson::dom::element& p,
                                               std::string_view key) {
  std::optional<simdjson::dom::element> found;
  if (!p.is_object()) return found;
  const simdjson::dom::object object(p);
  for (auto [k, v] : object) {
    if (k == key) found = v;
  }
  return found;
}
std::string StringMember(const simdjson::dom::element& p, const char* key) {
  auto v = MemberOf(p, key);
  return v && v->is_string() ? std::string(std::string_view(*v)) : "";
}
bool HasMember(const Json& p, const char* key) { return p.contains(key); }
bool HasMember(const simdjson::dom::element& p, const char* key) {
  return MemberOf(p, key).has_value();
}

}  // namespace

void Folder::Fold(FoldedBatch* b) {
  if (feed_) b->feed.resize(b->events.size());
  // The cases this batch touches, taken out of the cache while it folds.
  // Kept states are folded where they are kept; the bound is kept between
  // batches (a batch may pass it by its own cases).
  if (cache_.size() >= kStateCacheEntries) cache_.clear();
  struct Work {
    Entry* entry;
    FoldedCase* out;
  };
  std::map<std::string, Work> work;
  for (size_t i = 0; i < b->events.size(); ++i) {
    const RecordedEvent& e = b->events[i];
    if (!service::IsCaseStream(e.stream_id)) continue;
    auto w = work.find(e.stream_id);
    Status s = Status::OK();
    if (w == work.end()) {
      StatusOr<Entry*> before = Before(e);
      s = before.status();
      if (s.ok()) {
        FoldedCase* c = &b->cases[e.stream_id];
        c->first_version = e.version.value();
        if (c->first_version != 1) {
          Entry& en = **before;
          if (!en.keys) {
            en.keys = std::make_shared<const IndexKeySet>(
                IndexKeys(e.stream_id, en.state));
          }
          c->keys_before = std::move(en.keys);
        }
        w = work.emplace(e.stream_id, Work{*before, c}).first;
      }
    }
    // The payload: parsed by simdjson (`root`), or decoded into `d`.
    simdjson::dom::element root;
    std::optional<domain::DomainEvent> d;
    if (s.ok()) {
      const uint32_t current = catalog_.CurrentVersion(e.type);
      if (current == 0 || current != e.schema_version ||
          parser_.parse(e.payload).get(root) != simdjson::SUCCESS) {
        StatusOr<domain::DomainEvent> decoded =
            service::ToDomainEvent(catalog_, e);
        s = decoded.status();
        if (s.ok()) d = std::move(*decoded);
      }
    }
    if (!s.ok()) {
      // Never skip: stop here, say where and why.
      b->failure = "cannot apply event " + e.event_id.ToString() +
                   " at position " + std::to_string(e.position.value()) +
                   " (case " + e.stream_id + ", " + e.type +
                   "): " + s.ToString();
      cache_.clear();
      return;
    }
    const std::string_view type = e.type;  // compared by length first
    Entry& en = *w->second.entry;
    FoldedCase& c = *w->second.out;
    const bool was_out = feed_ && OptedOutOfLearning(en.state);
    if (d) {
      en.state = domain::Evolve(std::move(en.state), *d);
    } else {
      service::ToEventHeader(e, e.schema_version, &header_);
      domain::EvolveInPlace(en.state, header_, root);
    }
    c.version = en.state.version;
    c.last_position = e.position.value();
    if (!feed_) continue;
    FeedInput& input = b->feed[i];
    input.was_out = was_out;
    if (d) {
      CollectIdentifiers(d->payload, &c.ids);
    } else {
      CollectParsedIdentifiers(root, &c.ids);
    }
    input.out = OptedOutOfLearning(en.state);
    if (type == "ConcernReported" || (input.out && !input.was_out)) {
      FeedDetail& in = input.MakeDetail();
      in.has_report = true;
      in.reported_at = en.state.reported_at;
      in.kind = en.state.kind;
      in.setting = en.state.setting;
      in.categories = en.state.categories;
      in.urgent = en.state.urgent;
    }
    // What the feed reads of the payload, from whichever was made of it.
    auto str = [&](const char* key) {
      return d ? StringMember(d->payload, key) : StringMember(root, key);
    };
    // Learning text is kept as a document (the feed shares it as it
    // was recorded and corrected): built for a LearningRecorded event, and
    // for an amendment of one.
    bool track = type == "LearningRecorded";
    if (type == "ReviewCompleted") {
      FeedDetail& in = input.MakeDetail();
      in.review_kind = str("kind");
      in.outcomes_achieved = str("outcomes_achieved");
      in.feels_safer = str("feels_safer");
    } else if (type == "CaseClosed") {
      FeedDetail& in = input.MakeDetail();
      in.reason = str("reason");
      in.outcome_review = d ? HasMember(d->payload, "outcome_review_id")
                            : HasMember(root, "outcome_review_id");
    } else if (type == "LearningScreened") {
      FeedDetail& in = input.MakeDetail();
      in.decision = str("decision");
      if (in.decision == "approved_for_sharing") {
        auto l = en.learning.find(str("learning_id"));
        if (l != en.learning.end()) {
          in.learning_event_id = l->second.event_id;
          if (e.schema_version >= 2) {
            // What the service released on approval (none: nothing is
            // shared). Rare enough to parse as a document.
            const Json payload =
                d ? d->payload : service::ParseStoredJson(e.payload);
            auto released = payload.find("released");
            if (released != payload.end() && released->is_object()) {
              // Its codes (themes, settings, forums) as recorded; its
              // text as released.
              in.learning = l->second.text;
              for (const char* f : {"what_went_well", "what_must_change"}) {
                in.learning[f] = released->value(f, "");
              }
            }
          } else {
            // Approved before the service released text (v1): the text as
            // recorded and corrected, scrubbed below as then.
            in.learning = l->second.text;
          }
        }
        in.batch_ids = c.ids;
      }
    } else if (type == "EventAmended") {
      FeedDetail& in = input.MakeDetail();
      in.amends_event_type = str("amends_event_type");
      in.amends_event_id = str("amends_event_id");
      for (const auto& [lid, l] : en.learning) {
        track = track || l.event_id == in.amends_event_id;
      }
    }
    if (!track) continue;
    if (!d) {
      d.emplace();
      static_cast<domain::EventHeader&>(*d) =
          service::ToEventHeader(e, e.schema_version);
      d->payload = service::ParseStoredJson(e.payload);
    }
    Track(&en, *d);
  }
  for (auto& [id, w] : work) {
    w.entry->keys =
        std::make_shared<const IndexKeySet>(IndexKeys(id, w.entry->state));
    w.out->keys = w.entry->keys;
    w.out->doc = CaseDocument(id, w.entry->state, w.out->last_position);
  }
}

StatusOr<Folder::Entry*> Folder::Before(const RecordedEvent& e) {
  // (Made where it is kept: a state is large, and moving one in was a
  // twentieth of the folding.)
  auto [it, added] = cache_.try_emplace(e.stream_id);
  Entry& en = it->second;
  if (!added) {
    if (en.state.version + 1 == e.version.value()) return &en;
    en = Entry();  // not the state just before `e`: folded again
  }
  if (e.version.value() > 1) {
    Status s = service::ForEachDomainEvent(
        store_, catalog_, e.stream_id, 1, e.version.value() - 1,
        [&](const domain::DomainEvent& d) {
          en.state = domain::Evolve(std::move(en.state), d);
          if (feed_) Track(&en, d);
          return Status::OK();
        });
    if (!s.ok()) {
      cache_.erase(it);
      return s;
    }
  }
  return &en;
}

void Folder::Track(Entry* en, const domain::DomainEvent& d) {
  if (std::string_view(d.type) == "LearningRecorded") {
    en->learning[d.payload.value("learning_id", "")] =
        Learning{d.event_id, d.payload};
  } else if (std::string_view(d.type) == "EventAmended") {
    const std::string amends = d.payload.value("amends_event_id", "");
    for (auto& [lid, l] : en->learning) {
      if (l.event_id != amends) continue;
      const Json corrected =
          d.payload.value("corrected_fields", Json::object());
      for (const auto& [k, v] : corrected.items()) l.text[k] = v;
    }
  }
}

}  // namespace caseledger::projections::internal

#include "caseledger/projections/read_models.h"

#include <openssl/evp.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>
#include <simdjson.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "caseledger/service/case_service.h"
#include "caseledger/storage_log.h"
#include "projections/src/anonymise.h"
#include "projections/src/case_document.h"
#include "projections/src/json_writer.h"
#include "projections/src/key_filter.h"
#include "projections/src/open_with_env.h"
#include "projections/src/table_chunk.h"

namespace caseledger::projections {
namespace {

using internal::CaseDocument;
using internal::CollectIdentifiers;
using internal::Identifiers;
using internal::IndexKeys;
using internal::IndexKeySet;
using internal::IndexPrefix;
using internal::kDayBytes;
using internal::KeyFilter;
using internal::kOverviewCounterPrefix;
using internal::Member;
using internal::OverviewCounterKey;
using internal::RecordText;
using internal::RedactIdentifiers;
using internal::Scrub;
using internal::TableChunk;

using Json = nlohmann::json;

// default CF: "generation" -> decimal N; "checkpoint:<N>" -> be64 position.
constexpr char kGenerationKey[] = "generation";
// The shape of the read models (documents, index tags, feed records). A
// store built under another shape is rebuilt from the log when opened.
constexpr char kShapeKey[] = "shape";
// 3: feed safeguards, bars from amendments; 4: shared learning withdrawn
// when corrected; 5: the overview's counters and the 'p' index tag.
constexpr char kShape[] = "5";
// Recently applied cases kept folded in memory (a few KiB each): enough for
// the cases in flight at once, bounded for stores of any size.
constexpr size_t kStateCacheEntries = 10000;
constexpr size_t kMemtableBudget = 64u << 20;
constexpr size_t kBlockCacheBytes = 32u << 20;
constexpr size_t kBatch = 1000;
// Counters of the learning statistics kept in memory (a few dozen bytes
// each).
constexpr size_t kCommittedEntries = 100000;

std::string StateCf(uint64_t gen) {
  return "case_state_g" + std::to_string(gen);
}
std::string IndexCf(uint64_t gen) {
  return "case_index_g" + std::to_string(gen);
}
std::string FeedCf(uint64_t gen) {
  return "learning_feed_g" + std::to_string(gen);
}
std::string StatsCf(uint64_t gen) {
  return "learning_stats_g" + std::to_string(gen);
}
std::string CheckpointKey(uint64_t gen) {
  return "checkpoint:" + std::to_string(gen);
}
std::string FeedSeqKey(uint64_t gen) {
  return "feed_seq:" + std::to_string(gen);
}
std::vector<std::string> GenerationCfs(uint64_t gen) {
  return {StateCf(gen), IndexCf(gen), FeedCf(gen), StatsCf(gen)};
}

// --- The learning feed's anonymisation --------------------------------------

// HMAC-SHA256 under one key (RFC 2104), with the key's inner and outer
// SHA-256 states computed once: OpenSSL's one-shot HMAC() sets the key up
// again on every call, seven times the cost of a pseudonym. Mac() may run
// on any number of threads at once (each copies the states).
class HmacSha256 {
 public:
  explicit HmacSha256(std::string_view key)
      : inner_(EVP_MD_CTX_new()), outer_(EVP_MD_CTX_new()) {
    unsigned char block[64] = {0};  // SHA-256's block size
    if (key.size() > sizeof(block)) {
      unsigned int n = 0;
      ok_ = EVP_Digest(key.data(), key.size(), block, &n, EVP_sha256(),
                       nullptr) == 1;
    } else {
      std::copy(key.begin(), key.end(), block);
    }
    unsigned char pad[64];
    for (auto [ctx, x] : {std::pair{inner_, 0x36}, std::pair{outer_, 0x5c}}) {
      for (size_t i = 0; i < sizeof(pad); ++i) {
        pad[i] = static_cast<unsigned char>(block[i] ^ x);
      }
      ok_ = ok_ && ctx != nullptr &&
            EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, pad, sizeof(pad)) == 1;
    }
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
  }
  ~HmacSha256() {
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
  }
  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;

  // The 32-byte MAC of `message`. Aborts if OpenSSL fails (it cannot, short
  // of running out of memory): a pseudonym must never be left empty.
  std::array<unsigned char, 32> Mac(std::string_view message) const {
    thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> t(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    std::array<unsigned char, 32> inner{}, mac{};
    unsigned int n = 0;
    const bool ok =
        ok_ && t && EVP_MD_CTX_copy_ex(t.get(), inner_) == 1 &&
        EVP_DigestUpdate(t.get(), message.data(), message.size()) == 1 &&
        EVP_DigestFinal_ex(t.get(), inner.data(), &n) == 1 &&
        EVP_MD_CTX_copy_ex(t.get(), outer_) == 1 &&
        EVP_DigestUpdate(t.get(), inner.data(), inner.size()) == 1 &&
        EVP_DigestFinal_ex(t.get(), mac.data(), &n) == 1;
    if (!ok) std::abort();
    return mac;
  }

 private:
  EVP_MD_CTX* inner_;
  EVP_MD_CTX* outer_;
  bool ok_ = true;
};

// "p-" + the first 16 bytes of HMAC-SHA256(key, case id), in hex.
std::string Pseudonym(const HmacSha256& key, std::string_view case_id) {
  const std::array<unsigned char, 32> mac = key.Mac(case_id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "p-";
  for (size_t i = 0; i < 16; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xF]);
  }
  return out;
}

// The pseudonym a consumer sees a case under: keyed by the consumer too
// (safeguarding.md d.2 rule 6), so pseudonyms given to two consumers cannot
// be linked without the key. Derived from the stored pseudonym (itself
// keyed by the case id), with the parts kept apart by NUL bytes.
std::string ConsumerPseudonym(const HmacSha256& key, std::string_view consumer,
                              const std::string& stored) {
  std::string message = "consumer";
  message.push_back('\0');
  message.append(consumer);
  message.push_back('\0');
  message += stored;
  return Pseudonym(key, message);
}

std::string Month(Timestamp t) {
  std::string month = FormatTimestamp(t);
  month.resize(7);
  return month;
}

// "YYYY-MM" -> the month after it; "" if `month` is not of that form.
std::string NextMonth(const std::string& month) {
  int y = 0, m = 0;
  if (month.size() != 7 || std::sscanf(month.c_str(), "%4d-%2d", &y, &m) != 2 ||
      m < 1 || m > 12) {
    return "";
  }
  if (++m == 13) {
    m = 1;
    ++y;
  }
  char out[32];
  std::snprintf(out, sizeof(out), "%04d-%02d", y, m);
  return out;
}

// A record-level feed follows k-anonymity (safeguarding.md d.2 rule 5): a
// case_reported record says what kind of case it was (kind, setting,
// categories, urgency) only when at least this many cases reported in the
// same month say the same; otherwise those fields read "suppressed".
constexpr uint64_t kMinClassSize = 5;

// The counter of a case_reported record's equivalence class.
std::string ClassKey(const std::string& month, const std::string& kind,
                     const std::string& setting,
                     std::vector<std::string> categories, bool urgent) {
  std::sort(categories.begin(), categories.end());
  std::string key =
      std::string("class") + '\0' + month + '\0' + kind + '|' + setting + '|';
  for (const auto& c : categories) key += c + ',';
  key += urgent ? "|urgent" : "|standard";
  return key;
}
// The same, from a stored record's fields.
std::string ClassKey(const std::string& month, const Json& fields) {
  std::vector<std::string> categories;
  for (const auto& c : fields.value("categories", Json::array())) {
    if (c.is_string()) categories.push_back(c.get<std::string>());
  }
  return ClassKey(month, fields.value("concern_kind", ""),
                  fields.value("setting", ""), std::move(categories),
                  fields.value("urgent", false));
}

// Whether anyone in the case has refused or withdrawn consent to its use in
// anonymised learning (safeguarding.md d.2 rule 1). Once so, the case stays
// out of the feed, even if consent is given again later.
bool OptedOutOfLearning(const domain::CaseState& state) {
  for (const auto& c : state.consents) {
    if (c.purpose == "use_in_anonymised_learning" &&
        (c.decision == "refused" || c.decision == "withdrawn")) {
      return true;
    }
  }
  return false;
}

uint64_t RoundCount(uint64_t n, uint64_t to) {
  return to == 0 ? n : ((n + to / 2) / to) * to;
}

std::string Be64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i)
    s[static_cast<size_t>(i)] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}
uint64_t FromBe64(const std::string& s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i)
    v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(what + ": " + s.ToString());
  if (s.IsNoSpace()) return Status::NoSpace(what + ": " + s.ToString());
  return Status::IOError(what + ": " + s.ToString());
}

// tag \0 value \0 case id -> (value, case id).
std::pair<std::string, std::string> SplitIndexKey(const std::string& key) {
  size_t first = key.find('\0');
  size_t last = key.rfind('\0');
  if (first == std::string::npos || last == first) return {"", ""};
  return {key.substr(first + 1, last - first - 1), key.substr(last + 1)};
}

std::string Sha256Hex(const std::string& in) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(in.data(), in.size(), d, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 0xF]);
  }
  return out;
}

// --- Folding: the first of a batch's two stages -----------------------------
//
// A batch is applied in two stages. Folding evolves each case's state
// through the batch's events and prepares what the second stage writes:
// each touched case's document and index keys, and what the learning feed
// reads of each event. It reads only the log (immutable), never the read
// models, so a rebuild runs it on a thread of its own ahead of the second
// stage (ReadModelsImpl::Apply), which reads and writes the read models in
// log order on one thread.

// What the learning feed reads of one case event besides whether the case
// is out of learning (FeedInput), by event type: most events need nothing
// of it.
struct FeedDetail {
  // The case's reported fields after the event, kept when the feed counts
  // the report (the event reports the case, or takes it out of learning).
  bool has_report = false;
  Timestamp reported_at;
  std::string kind;
  std::string setting;
  std::vector<std::string> categories;
  bool urgent = false;
  // What the feed reads of the payload, by event type (a member absent or
  // not a string reads as ""): ReviewCompleted's kind, outcomes achieved
  // and whether the person feels safer; CaseClosed's reason and whether
  // it names an outcome review; LearningScreened's decision;
  // EventAmended's amended event and its type.
  std::string review_kind;
  std::string outcomes_achieved;
  std::string feels_safer;
  std::string reason;
  bool outcome_review = false;
  std::string decision;
  std::string amends_event_type;
  std::string amends_event_id;
  // Approved learning: the text as recorded, with the corrections made
  // before the screening (null: none found); the id of its LearningRecorded
  // event; and the identifiers this batch's events of the case held up to
  // and including the screening.
  Json learning;
  std::string learning_event_id;
  Identifiers batch_ids;
};

// What the learning feed reads of one case event, taken when the event is
// folded (so the applying stage needs neither the case's state nor the log).
// Small: a batch holds one per event. (With the detail inline, making and
// freeing a batch's thousand of them, in pages faulted in afresh for each
// batch, was a tenth of the folding.)
struct FeedInput {
  bool was_out = false;  // the case was out of learning before the event
  bool out = false;      // and is after it
  std::unique_ptr<FeedDetail> detail;  // null: none

  const FeedDetail& Detail() const {
    static const FeedDetail kNone;
    return detail ? *detail : kNone;
  }
  FeedDetail& MakeDetail() {
    if (!detail) detail = std::make_unique<FeedDetail>();
    return *detail;
  }
};

// A case_reported record's fields (what it says of the case besides its
// pseudonym and month), and the key of its equivalence class's counter.
void AddReportedFields(const FeedDetail& in, std::vector<Member>* r) {
  r->push_back(Member::Str("concern_kind", in.kind));
  r->push_back(Member::Str("setting", in.setting));
  r->push_back(Member::Strs("categories", in.categories));
  r->push_back(Member::Flag("urgent", in.urgent));
}
std::string ClassKey(const std::string& month, const FeedDetail& in) {
  return ClassKey(month, in.kind, in.setting, in.categories, in.urgent);
}

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

// One case as a batch leaves it.
struct FoldedCase {
  uint64_t first_version = 0;  // of its first event in the batch
  uint64_t version = 0;        // after the batch
  uint64_t last_position = 0;  // of its last event in the batch
  std::string doc;             // its document (JSON) after the batch
  // The document's index keys, sorted; and those it had before the batch
  // (of its state before the batch's first event of it: what the read
  // models hold), none for a new case. Shared with the folder, which keeps
  // a case's keys with its state: the keys after one batch are the keys
  // before its next.
  std::shared_ptr<const IndexKeySet> keys;
  std::shared_ptr<const IndexKeySet> keys_before;
  Identifiers ids;  // the identifiers this batch's events hold
};

// A batch of the log, folded. An empty batch: the end of the log.
struct FoldedBatch {
  std::vector<RecordedEvent> events;
  std::vector<FeedInput> feed;  // one per event (case events only); empty
                                // without the feed
  std::map<std::string, FoldedCase> cases;
  // Non-empty: an event could not be folded (why, and where); nothing of
  // the batch may be applied.
  std::string failure;
};

// Folds batches in log order, keeping the states of recently folded cases
// (bounded) so that a case's next batch folds only its new events. One
// thread at a time.
class Folder {
 public:
  Folder(const EventStore& store, const domain::EventCatalog& catalog,
         bool feed)
      : store_(store), catalog_(catalog), feed_(feed) {}

  // Folds `b->events` into `b->feed` and `b->cases`. On a failure, says
  // why in `b->failure` and forgets every kept state.
  //
  // A payload at its type's current schema version (every payload but
  // those written before an upgrade) is folded from simdjson's parse of its
  // text, without building a document (the same state: see
  // domain::Evolve); a document is built only for an older one (to upcast
  // it) and for the few event types the feed keeps the payload of.
  void Fold(FoldedBatch* b) {
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
            in.learning = l->second.text;
            in.learning_event_id = l->second.event_id;
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

  void Clear() { cache_.clear(); }

 private:
  // A LearningRecorded event's text, as corrected since.
  struct Learning {
    std::string event_id;
    Json text;
  };
  struct Entry {
    domain::CaseState state;
    // By learning id: the latest LearningRecorded of each (kept only when
    // the feed is on).
    std::map<std::string, Learning> learning;
    // The index keys of `state`, once folded into a batch (null before).
    std::shared_ptr<const IndexKeySet> keys;
  };

  // The case as it stood before `e`, kept: as kept already, new, or folded
  // from the log. (Pointers to kept entries stay valid until the cache is
  // cleared: between batches, or on a failure.)
  StatusOr<Entry*> Before(const RecordedEvent& e) {
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

  // Keeps learning text and its corrections, for the screening that shares
  // it.
  static void Track(Entry* en, const domain::DomainEvent& d) {
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

  const EventStore& store_;
  const domain::EventCatalog& catalog_;
  const bool feed_;
  std::unordered_map<std::string, Entry> cache_;
  simdjson::dom::parser parser_;  // reused: its buffers grow once
  // The store leaves this much room after each payload it reads
  // (engine/src/record.cc), so the parser reads it in place.
  static_assert(simdjson::SIMDJSON_PADDING <= 64);
  domain::EventHeader header_;  // reused: the event folded now
};

// A bounded hand-off between two threads. Close() abandons it: blocked and
// later calls return at once (Push false, Pop nothing).
template <typename T>
class Handoff {
 public:
  explicit Handoff(size_t capacity) : capacity_(capacity) {}

  bool Push(T v) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return closed_ || q_.size() < capacity_; });
    if (closed_) return false;
    q_.push_back(std::move(v));
    cv_.notify_all();
    return true;
  }
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return closed_ || !q_.empty(); });
    if (closed_) return std::nullopt;
    T v = std::move(q_.front());
    q_.pop_front();
    cv_.notify_all();
    return v;
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> q_;      // guarded by mu_
  bool closed_ = false;  // guarded by mu_
};

// Reads the whole log from the start and folds it, a few batches ahead of
// its consumer, on two threads of its own: one reads and decodes each
// batch, the other folds it (with a Folder of its own). Next() hands the
// folded batches over in order; a read error ends the stream with that
// error, a fold failure with a batch that carries the failure. Destroying
// it stops both threads.
class FoldAhead {
 public:
  FoldAhead(const EventStore& store, const domain::EventCatalog& catalog,
            bool feed)
      : store_(store),
        folder_(store, catalog, feed),
        reader_([this] { Read(); }),
        fold_thread_([this] { Fold(); }) {}
  ~FoldAhead() {
    read_.Close();
    folded_.Close();
    reader_.join();
    fold_thread_.join();
  }
  FoldAhead(const FoldAhead&) = delete;
  FoldAhead& operator=(const FoldAhead&) = delete;

  StatusOr<FoldedBatch> Next() {
    std::optional<StatusOr<FoldedBatch>> b = folded_.Pop();
    if (!b) return Status::Unavailable("the log's reader stopped");
    return std::move(*b);
  }

 private:
  static constexpr size_t kAhead = 4;  // batches ahead, at most, per stage

  void Read() {
    uint64_t pos = 0;
    for (;;) {
      auto events = store_.ReadAll(GlobalPosition(pos), kBatch);
      if (!events.ok()) {
        read_.Push(events.status());
        return;
      }
      const bool end = events->empty();
      if (!end) pos = events->back().position.value();
      if (!read_.Push(std::move(*events)) || end) return;
    }
  }

  void Fold() {
    for (;;) {
      std::optional<StatusOr<std::vector<RecordedEvent>>> events = read_.Pop();
      if (!events) return;
      if (!events->ok()) {
        folded_.Push(events->status());
        return;
      }
      FoldedBatch b;
      b.events = std::move(**events);
      folder_.Fold(&b);
      const bool end = b.events.empty() || !b.failure.empty();
      if (!folded_.Push(std::move(b)) || end) {
        // The kept states are freed here, while the consumer finishes,
        // rather than by the destructor after it.
        folder_.Clear();
        return;
      }
    }
  }

  const EventStore& store_;
  Folder folder_;  // the fold thread's only
  Handoff<StatusOr<std::vector<RecordedEvent>>> read_{kAhead};
  Handoff<StatusOr<FoldedBatch>> folded_{kAhead};
  std::thread reader_;  // last: they start once the rest exists
  std::thread fold_thread_;
};

// A rebuild's writer: writes each batch the rebuild prepares on a thread of
// its own, in order, while the next one is prepared, and frees what the
// batch was made from there too. Without the WAL: the rebuild flushes its
// generation before swapping it in, and a crash before that leaves a
// generation that is never used (the next rebuild drops it). Stops writing
// at the first failure and reports it.
//
// The index entries (two thirds of a rebuild's writes; nothing reads them
// until the swap) skip the memtable: they are gathered (by the thread that
// prepares the batches, straight into the chunk handed on), a few hundred
// thousand at a time, and a thread of their own sorts them into a run file
// (the batches' writes go on meanwhile); at the end the runs are merged
// into the index (MergeRuns). The learning statistics, which the rebuild
// keeps in memory and hands over now and then (WriteStats), are written
// into table files and ingested.
//
// The documents and the feed's records skip the memtable too: the writer
// writes them into table files as they come, in key order (a feed record's
// key is its sequence number; cases mostly come in the order of their ids,
// which are ordered by time), so the files do not overlap and each is
// ingested into the last level, where nothing merges it again. Inserting
// them into the memtable, flushing it and compacting what it flushed was a
// tenth of a rebuild's work. A document that comes out of order (a case
// whose events span batches, written again) is gathered aside and written
// into a table file of its own, ingested after what it hides.
class BatchWriter {
 public:
  // A column family written in table files: where, with which options,
  // what (in errors), and how many bytes of values go into one file.
  struct Target {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    rocksdb::Options options;
    std::string what;
    size_t bytes_per_file = 0;
  };

  // Gathers up to `index_chunk` index operations before it writes them.
  // Once the last batch is written, starts flushing `memtables` (the column
  // families batches write), while the last table files are written.
  BatchWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* index_cf,
              rocksdb::ColumnFamilyHandle* stats_cf,
              std::vector<rocksdb::ColumnFamilyHandle*> memtables,
              rocksdb::Options index_options, rocksdb::Options stats_options,
              std::string file_prefix, size_t index_chunk, size_t max_runs,
              Target documents, Target feed)
      : db_(db),
        index_cf_(index_cf),
        stats_cf_(stats_cf),
        memtables_(std::move(memtables)),
        index_options_(std::move(index_options)),
        stats_options_(std::move(stats_options)),
        file_prefix_(std::move(file_prefix)),
        index_chunk_(std::clamp<size_t>(index_chunk, 1, TableChunk::kMaxOps)),
        sample_every_(std::max<size_t>(1, index_chunk_ / kRunSamples)),
        max_runs_(std::max<size_t>(max_runs, 2)),
        documents_(std::move(documents)),
        feed_(std::move(feed)),
        thread_([this] { Run(); }),
        index_thread_([this] { RunIndex(); }) {}
  ~BatchWriter() {
    chunks_.Close();
    {
      std::lock_guard<std::mutex> lk(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    thread_.join();
    index_thread_.join();
    RemoveRuns();  // those of a rebuild that failed
  }
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Where the thread that prepares the batches adds each batch's index
  // operations, before its Write (which hands them to the index thread
  // once there are enough for a run). That thread's only.
  TableChunk& IndexOps() { return gathering_; }

  // Queues `wb`, the feed records `feed` (by sequence number, ascending)
  // and the documents of `made_from`, waiting while a few are queued
  // already; the first failure, if any. (Called by the thread that
  // prepares the batches.)
  Status Write(rocksdb::WriteBatch wb,
               std::vector<std::pair<uint64_t, std::string>> feed,
               FoldedBatch made_from) {
    Item item;
    item.wb = std::move(wb);
    if (gathering_.size() >= index_chunk_) {
      item.index = std::move(gathering_);
      gathering_ = Spare();
    }
    item.feed = std::move(feed);
    item.made_from = std::move(made_from);
    return Queue(std::move(item));
  }

  // Queues operations on the stats column family (after every batch queued
  // before them): written into a table file and ingested.
  Status WriteStats(TableChunk stats) {
    Item item;
    item.stats = std::move(stats);
    return Queue(std::move(item));
  }

  // Waits until every queued batch is written (so a read sees them); the
  // first failure, if any.
  Status Drain() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return (q_.empty() && !busy_) || !failed_.ok(); });
    return failed_;
  }

  // No batch comes after those queued: once they are written, the last
  // table files are written and the index's runs merged, while statistics
  // (WriteStats) may still come (making the last of them takes a while,
  // and the merge need not wait for it).
  Status EndBatches() {
    Item last;
    last.index = std::move(gathering_);
    last.finish = true;
    return Queue(std::move(last));
  }

  // Writes everything queued, index entries included (after EndBatches);
  // the first failure, if any.
  Status Finish() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] {
      return (q_.empty() && !busy_ && index_done_) || !failed_.ok();
    });
    return failed_;
  }

 private:
  static constexpr size_t kAhead = 4;
  struct Item {
    rocksdb::WriteBatch wb;
    TableChunk index;
    std::vector<std::pair<uint64_t, std::string>> feed;
    FoldedBatch made_from;
    TableChunk stats;
    bool finish = false;
  };

  Status Queue(Item item) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return q_.size() < kAhead || !failed_.ok(); });
    if (!failed_.ok()) return failed_;
    q_.push_back(std::move(item));
    lk.unlock();
    cv_.notify_all();
    return Status::OK();
  }

  void Fail(const Status& s) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (failed_.ok()) failed_ = s;
    }
    cv_.notify_all();
  }

  void Run() {
    rocksdb::WriteOptions options;
    options.disableWAL = true;
    for (;;) {
      std::optional<Item> item;
      bool write = false;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return closed_ || !q_.empty(); });
        if (q_.empty()) return;
        item.emplace(std::move(q_.front()));
        q_.pop_front();
        busy_ = true;
        write = failed_.ok();
      }
      Status s;
      if (write && !item->stats.empty()) {
        s = IngestChunk(stats_cf_, stats_options_, "learning statistics",
                        item->stats);
      } else if (write) {
        s = FromRocks(db_->Write(options, &item->wb), "applying");
        if (s.ok()) s = WriteFeed(item->feed);
        if (s.ok()) s = WriteDocuments(item->made_from);
        if (s.ok() && item->finish) s = FinishTables();
        if (s.ok() && item->finish) {
          // The last batch is in: the memtables start to flush now, not
          // after the last table files are in.
          rocksdb::FlushOptions flush;
          flush.wait = false;
          s = FromRocks(db_->Flush(flush, memtables_), "flushing");
        }
        // A full chunk of index operations, and the last (then an empty
        // chunk says there are no more), to the index thread.
        if (s.ok() && !item->index.empty() &&
            !chunks_.Push(std::move(item->index))) {
          s = Status::Unavailable("the index writer stopped");
        }
        if (s.ok() && item->finish && !chunks_.Push(TableChunk())) {
          s = Status::Unavailable("the index writer stopped");
        }
      }
      item.reset();
      {
        std::lock_guard<std::mutex> lk(mu_);
        busy_ = false;
        if (!s.ok() && failed_.ok()) failed_ = s;
      }
      cv_.notify_all();
    }
  }

  // An empty chunk to gather into: the last one written, emptied, if the
  // index thread is done with it (its buffers are as large as a chunk
  // needs: growing new ones again faulted in fresh pages every time).
  // (Called by the thread that prepares the batches.)
  TableChunk Spare() {
    std::lock_guard<std::mutex> lk(mu_);
    TableChunk chunk = std::move(spare_);
    spare_ = TableChunk();
    return chunk;
  }

  // The index thread: writes each chunk handed over, sorted (the last of
  // each key's operations), into a run file of its own; an empty chunk, the
  // last, has it merge the runs (MergeRuns).
  void RunIndex() {
    for (;;) {
      std::optional<TableChunk> chunk = chunks_.Pop();
      if (!chunk) return;  // abandoned
      Status s = chunk->empty() ? MergeRuns() : WriteRun(*chunk);
      if (!s.ok()) {
        Fail(s);
        return;
      }
      if (chunk->empty()) {
        {
          std::lock_guard<std::mutex> lk(mu_);
          index_done_ = true;
        }
        cv_.notify_all();
        return;
      }
      chunk->Clear();
      std::lock_guard<std::mutex> lk(mu_);
      spare_ = std::move(*chunk);
    }
  }

  // A sorted run of index operations, in a file of the rebuild's own: each
  // record is the key's length (4 bytes, little-endian), the key, and 1 if
  // it puts the key, 0 if it deletes it. Some of its records' keys and
  // offsets are kept (every sample_every_-th: a chunk's run is sampled at
  // most about kRunSamples times, fewer when it held a key more than once),
  // to split the runs where the last merge's two threads get about as many
  // records each (SplitRuns).
  static constexpr size_t kRunSamples = 128;
  struct IndexRun {
    std::string path;
    uint64_t size = 0;
    std::vector<std::pair<std::string, uint64_t>> samples;  // key, offset
  };
  // Where a merge reads each run: [from, to).
  struct RunRange {
    uint64_t from = 0;
    uint64_t to = 0;
  };

  // Writes a run's records (buffered), and samples them.
  class RunWriter {
   public:
    RunWriter(const std::string& path, uint64_t sample_every)
        : sample_every_(sample_every),
          buffer_(1u << 20),
          f_(std::fopen(path.c_str(), "wb"), &std::fclose) {
      if (f_) std::setvbuf(f_.get(), buffer_.data(), _IOFBF, buffer_.size());
    }
    bool ok() const { return f_ != nullptr; }
    bool Add(std::string_view key, bool put) {
      const uint32_t len = static_cast<uint32_t>(key.size());
      char head[4];
      std::memcpy(head, &len, 4);
      const char op = put ? 1 : 0;
      if (records_++ % sample_every_ == 0) samples_.emplace_back(key, size_);
      size_ += 5 + key.size();
      // (glibc's unlocked calls: the file is this thread's only; locking it
      // for each of a run's millions of writes was a sixth of the index
      // thread.)
      return fwrite_unlocked(head, 1, 4, f_.get()) == 4 &&
             fwrite_unlocked(key.data(), 1, key.size(), f_.get()) ==
                 key.size() &&
             fwrite_unlocked(&op, 1, 1, f_.get()) == 1;
    }
    uint64_t size() const { return size_; }
    // Closes the file; what was written, in `*run`.
    bool Close(IndexRun* run) {
      run->size = size_;
      run->samples = std::move(samples_);
      bool ok = std::fflush(f_.get()) == 0 && std::ferror(f_.get()) == 0;
      return std::fclose(f_.release()) == 0 && ok;
    }

   private:
    const uint64_t sample_every_;
    std::vector<char> buffer_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
    uint64_t size_ = 0;
    uint64_t records_ = 0;
    std::vector<std::pair<std::string, uint64_t>> samples_;
  };

  Status WriteRun(TableChunk& chunk) {
    // Bounded: the runs are merged into one now and then.
    if (runs_.size() >= max_runs_) RETURN_IF_ERROR(MergeIntoRun());
    IndexRun run;
    run.path = file_prefix_ + std::to_string(++files_) + ".run";
    runs_.push_back(run);  // (so that a failure removes it)
    RunWriter out(run.path, sample_every_);
    if (!out.ok()) return Status::IOError("creating " + run.path);
    bool ok = true;
    chunk.ForEachLast([&](std::string_view key, bool put, std::string_view) {
      ok = out.Add(key, put);
      return ok;
    });
    if (!out.Close(&run) || !ok) return Status::IOError("writing " + run.path);
    runs_.back() = std::move(run);
    return Status::OK();
  }

  // Reads one run's records in [from, to).
  class RunCursor {
   public:
    RunCursor(const IndexRun& run, uint64_t from, uint64_t to, size_t index)
        : left_(to - from),
          index_(index),
          f_(std::fopen(run.path.c_str(), "rb"), &std::fclose) {
      if (!f_ || std::fseek(f_.get(), static_cast<long>(from), SEEK_SET) != 0) {
        failed_ = true;
        left_ = 0;
        return;
      }
      buffer_.resize(64u << 10);
      std::setvbuf(f_.get(), buffer_.data(), _IOFBF, buffer_.size());
    }
    // The next record: false at the end of its range (or on a failure).
    bool Next() {
      if (left_ == 0) return false;
      char head[4];
      uint32_t len = 0;
      // (Unlocked, as the writer's: the file is this thread's only.)
      if (fread_unlocked(head, 1, 4, f_.get()) != 4) return Failed();
      std::memcpy(&len, head, 4);
      if (left_ < 5 + uint64_t{len}) return Failed();
      key_.resize(len);
      char op = 0;
      if (fread_unlocked(key_.data(), 1, len, f_.get()) != len ||
          fread_unlocked(&op, 1, 1, f_.get()) != 1) {
        return Failed();
      }
      put_ = op != 0;
      left_ -= 5 + uint64_t{len};
      return true;
    }
    const std::string& key() const { return key_; }
    bool put() const { return put_; }
    size_t index() const { return index_; }  // later runs hide earlier ones
    bool failed() const { return failed_; }

   private:
    bool Failed() {
      failed_ = true;
      left_ = 0;
      return false;
    }
    uint64_t left_;
    size_t index_;
    std::vector<char> buffer_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
    std::string key_;
    bool put_ = false;
    bool failed_ = false;
  };

  // Calls put(key) for each key the runs leave put, in order: the runs'
  // records in `ranges` (one per run), the last operation on each key
  // counting. (A key whose last operation deletes it is left out: a rebuild
  // starts from nothing.)
  template <typename Put>
  Status MergeRange(const std::vector<RunRange>& ranges, Put put) {
    std::vector<std::unique_ptr<RunCursor>> cursors;
    for (size_t i = 0; i < runs_.size(); ++i) {
      const IndexRun& r = runs_[i];
      cursors.push_back(
          std::make_unique<RunCursor>(r, ranges[i].from, ranges[i].to, i));
      if (cursors.back()->failed()) {
        return Status::IOError("reading " + r.path);
      }
    }
    // Smallest key first; of equal keys, the latest run's first.
    auto later = [](const RunCursor* a, const RunCursor* b) {
      const int c = a->key().compare(b->key());
      return c != 0 ? c > 0 : a->index() < b->index();
    };
    std::priority_queue<RunCursor*, std::vector<RunCursor*>, decltype(later)>
        heap(later);
    for (auto& c : cursors) {
      if (c->Next()) heap.push(c.get());
    }
    std::string key;
    while (!heap.empty()) {
      RunCursor* top = heap.top();
      heap.pop();
      key = top->key();
      const bool puts = top->put();
      if (top->Next()) heap.push(top);
      while (!heap.empty() && heap.top()->key() == key) {
        RunCursor* same = heap.top();
        heap.pop();
        if (same->Next()) heap.push(same);
      }
      if (puts) RETURN_IF_ERROR(put(key));
    }
    for (auto& c : cursors) {
      if (c->failed()) return Status::IOError("reading index runs");
    }
    return Status::OK();
  }

  // The merge of `ranges` into a table file of the index (its path in
  // `*path`, left empty if no key is put).
  Status MergeIntoTable(const std::vector<RunRange>& ranges,
                        std::string* path) {
    rocksdb::SstFileWriter file(rocksdb::EnvOptions(), index_options_,
                                index_cf_);
    bool open = false;
    auto put = [&](const std::string& key) -> Status {
      if (!open) {
        *path = file_prefix_ + std::to_string(++files_) + ".sst";
        rocksdb::Status os = file.Open(*path);
        if (!os.ok()) return FromRocks(os, "writing index entries");
        open = true;
      }
      return FromRocks(file.Put(key, ""), "writing index entries");
    };
    RETURN_IF_ERROR(MergeRange(ranges, put));
    if (open) {
      RETURN_IF_ERROR(FromRocks(file.Finish(), "writing index entries"));
    }
    return Status::OK();
  }

  // Merges the runs so far into one (a long log would otherwise hold a
  // file open per run for each half of the last merge).
  Status MergeIntoRun() {
    IndexRun run;
    run.path = file_prefix_ + std::to_string(++files_) + ".run";
    RunWriter out(run.path, sample_every_);
    if (!out.ok()) return Status::IOError("creating " + run.path);
    std::vector<RunRange> whole;
    for (const IndexRun& r : runs_) whole.push_back(RunRange{0, r.size});
    RETURN_IF_ERROR(MergeRange(whole, [&](const std::string& key) {
      return out.Add(key, true) ? Status::OK()
                                : Status::IOError("writing " + run.path);
    }));
    if (!out.Close(&run)) return Status::IOError("writing " + run.path);
    RemoveRuns();
    runs_.push_back(std::move(run));
    return Status::OK();
  }

  // Where each run's keys from the median of its samples' keys begin (the
  // median of all records' keys to within sample_every_ records a run; each
  // split itself is exact), so that the two halves of the last merge take
  // about as long: the first half is each run's records before its split,
  // the second the rest.
  // (The first run's middle key, used before, left one thread twice the
  // other's work.)
  StatusOr<std::vector<uint64_t>> SplitRuns() {
    std::vector<std::string_view> keys;
    for (const IndexRun& r : runs_) {
      for (const auto& [key, offset] : r.samples) keys.push_back(key);
    }
    std::vector<uint64_t> splits;
    if (keys.empty()) {  // no records at all
      splits.assign(runs_.size(), 0);
      return splits;
    }
    auto mid = keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 2);
    std::nth_element(keys.begin(), mid, keys.end());
    const std::string split_key(*mid);
    for (size_t i = 0; i < runs_.size(); ++i) {
      const IndexRun& r = runs_[i];
      // From the last sample before the key, the records up to the first
      // at or after it.
      auto after =
          std::lower_bound(r.samples.begin(), r.samples.end(), split_key,
                           [](const auto& sample, const std::string& k) {
                             return sample.first < k;
                           });
      uint64_t at = after == r.samples.begin() ? 0 : std::prev(after)->second;
      const uint64_t to = after == r.samples.end() ? r.size : after->second;
      RunCursor c(r, at, to, i);
      while (c.Next() && c.key() < split_key) at += 5 + c.key().size();
      if (c.failed()) return Status::IOError("reading " + r.path);
      splits.push_back(at);
    }
    return splits;
  }

  // The runs (each sorted, each spanning the whole key range) merged into
  // table files that do not overlap, on two threads (one key range each),
  // and ingested into the last level: nothing merges them again.
  // (Ingested as they came, the runs' files overlapped in level 0, and
  // RocksDB merged them after the swap on one thread: 0.3-0.5 s on a
  // million events.)
  Status MergeRuns() {
    std::string first, second;
    StatusOr<std::vector<uint64_t>> splits = SplitRuns();
    Status s = splits.status();
    if (s.ok()) {
      std::vector<RunRange> low, high;
      for (size_t i = 0; i < runs_.size(); ++i) {
        low.push_back(RunRange{0, (*splits)[i]});
        high.push_back(RunRange{(*splits)[i], runs_[i].size});
      }
      Status other;
      std::thread helper([&] { other = MergeIntoTable(high, &second); });
      s = MergeIntoTable(low, &first);
      helper.join();
      if (s.ok()) s = other;
    }
    std::vector<std::string> paths;
    for (const std::string* p : {&first, &second}) {
      if (!p->empty()) paths.push_back(*p);
    }
    if (s.ok()) {
      s = IngestFiles(index_cf_, paths, "index entries");
    } else {
      for (const std::string& p : paths) std::remove(p.c_str());
    }
    RemoveRuns();
    return s;
  }

  void RemoveRuns() {
    for (const IndexRun& r : runs_) std::remove(r.path.c_str());
    runs_.clear();
  }

  // A table file written as its keys come, each greater than every key
  // before it (in this file and the ones before), and ingested once it
  // holds its target's bytes, or at the end. (Writer thread only.)
  struct Ascending {
    explicit Ascending(const Target* t) : target(t) {}
    const Target* target;
    std::unique_ptr<rocksdb::SstFileWriter> file;  // open, or null
    std::string path;
    size_t bytes = 0;  // in the open file
    std::string last;  // the greatest key put
    bool any = false;  // whether a key was put
    bool Ascends(std::string_view key) const { return !any || key > last; }
  };

  Status Put(Ascending& a, std::string_view key, std::string_view value) {
    if (!a.file) {
      a.path = file_prefix_ + std::to_string(++files_) + ".sst";
      a.file = std::make_unique<rocksdb::SstFileWriter>(
          rocksdb::EnvOptions(), a.target->options, a.target->cf);
      RETURN_IF_ERROR(
          FromRocks(a.file->Open(a.path), "writing " + a.target->what));
    }
    RETURN_IF_ERROR(
        FromRocks(a.file->Put(key, value), "writing " + a.target->what));
    a.last.assign(key);
    a.any = true;
    a.bytes += key.size() + value.size();
    if (a.bytes >= a.target->bytes_per_file) return Ingest(a);
    return Status::OK();
  }

  // Finishes the open file, if any, and ingests it.
  Status Ingest(Ascending& a) {
    if (!a.file) return Status::OK();
    std::unique_ptr<rocksdb::SstFileWriter> file = std::move(a.file);
    a.bytes = 0;
    if (Status s = FromRocks(file->Finish(), "writing " + a.target->what);
        !s.ok()) {
      std::remove(a.path.c_str());
      return s;
    }
    return IngestFiles(a.target->cf, {a.path}, a.target->what);
  }

  Status WriteFeed(const std::vector<std::pair<uint64_t, std::string>>& feed) {
    for (const auto& [seq, text] : feed) {
      const std::string key = Be64(seq);
      if (!feed_file_.Ascends(key)) {
        return Status::FailedPrecondition("feed record " + std::to_string(seq) +
                                          " comes after a later one");
      }
      RETURN_IF_ERROR(Put(feed_file_, key, text));
    }
    return Status::OK();
  }

  // A batch's documents: in order, or aside (out of order).
  Status WriteDocuments(const FoldedBatch& b) {
    for (const auto& [id, c] : b.cases) {
      if (documents_file_.Ascends(id)) {
        RETURN_IF_ERROR(Put(documents_file_, id, c.doc));
        continue;
      }
      aside_.Add(id, true, c.doc);
      if (aside_.value_bytes() >= documents_.bytes_per_file) {
        RETURN_IF_ERROR(WriteAside());
      }
    }
    return Status::OK();
  }

  // The documents gathered aside, in a table file ingested after every
  // document written before them (so that they hide those of their keys).
  Status WriteAside() {
    if (aside_.empty()) return Status::OK();
    RETURN_IF_ERROR(Ingest(documents_file_));
    RETURN_IF_ERROR(IngestChunk(documents_.cf, documents_.options,
                                documents_.what, aside_));
    aside_.Clear();
    return Status::OK();
  }

  Status FinishTables() {
    RETURN_IF_ERROR(WriteAside());
    RETURN_IF_ERROR(Ingest(documents_file_));
    return Ingest(feed_file_);
  }

  // Writes a table file of `cf`, the last of the chunk's operations on each
  // key, and ingests it: it hides what the column family held of its keys.
  Status IngestChunk(rocksdb::ColumnFamilyHandle* cf,
                     const rocksdb::Options& options, const std::string& what,
                     TableChunk& chunk) {
    const std::string path = file_prefix_ + std::to_string(++files_) + ".sst";
    rocksdb::SstFileWriter file(rocksdb::EnvOptions(), options, cf);
    RETURN_IF_ERROR(FromRocks(file.Open(path), "writing " + what));
    rocksdb::Status ws;
    chunk.ForEachLast(
        [&](std::string_view key, bool put, std::string_view value) {
          ws = put ? file.Put(key, value) : file.Delete(key);
          return ws.ok();
        });
    if (ws.ok()) ws = file.Finish();
    if (!ws.ok()) {
      std::remove(path.c_str());
      return FromRocks(ws, "writing " + what);
    }
    return IngestFiles(cf, {path}, what);
  }

  // Ingests the table files at `paths` into `cf` (moved in, so they hide
  // what it held of their keys), then removes them (what was moved in is
  // linked there; on a failure, nothing is used).
  Status IngestFiles(rocksdb::ColumnFamilyHandle* cf,
                     const std::vector<std::string>& paths,
                     const std::string& what) {
    if (paths.empty()) return Status::OK();
    rocksdb::IngestExternalFileOptions ingest;
    ingest.move_files = true;
    Status s = FromRocks(db_->IngestExternalFile(cf, paths, ingest),
                         "ingesting " + what);
    for (const std::string& p : paths) std::remove(p.c_str());
    return s;
  }

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const index_cf_;
  rocksdb::ColumnFamilyHandle* const stats_cf_;
  const std::vector<rocksdb::ColumnFamilyHandle*> memtables_;
  const rocksdb::Options index_options_;  // of its table files
  std::vector<IndexRun> runs_;  // the index thread's: the runs written
  const rocksdb::Options stats_options_;
  const std::string file_prefix_;
  const size_t index_chunk_;
  const uint64_t sample_every_;  // a run's records per sample
  const size_t max_runs_;  // runs kept apart before they are merged into one
  const Target documents_;
  const Target feed_;
  // The writer thread's.
  Ascending documents_file_{&documents_};
  Ascending feed_file_{&feed_};
  TableChunk aside_;  // documents out of order
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> q_;       // guarded by mu_
  bool busy_ = false;        // writing one; guarded by mu_
  bool closed_ = false;      // guarded by mu_
  bool index_done_ = false;  // the last chunk is in; guarded by mu_
  TableChunk spare_;         // guarded by mu_
  // Index operations gathered for the next run (the preparing thread's).
  TableChunk gathering_;
  Status failed_;                   // guarded by mu_
  std::atomic<uint64_t> files_{0};  // table files written (both threads)
  // Full chunks of index operations, from the writer thread to the index
  // thread: one waits while the one before is written.
  Handoff<TableChunk> chunks_{1};
  std::thread thread_;  // last: they start once the rest exists
  std::thread index_thread_;
};

class ReadModelsImpl final : public ReadModels {
 public:
  ReadModelsImpl(const EventStore& store,
                 std::shared_ptr<const domain::EventCatalog> catalog,
                 std::shared_ptr<spdlog::logger> logger, std::string key)
      : store_(store),
        catalog_(std::move(catalog)),
        logger_(std::move(logger)),
        key_(std::move(key)),
        hmac_(key_.empty() ? nullptr : std::make_unique<HmacSha256>(key_)) {
    if (!logger_) {
      logger_ = std::make_shared<spdlog::logger>(
          "caseledger.projections",
          std::make_shared<spdlog::sinks::null_sink_mt>());
    }
  }

  ~ReadModelsImpl() override {
    Stop();
    if (!db_) return;
    for (auto& [name, h] : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }

  // The read models' memory is bounded, whatever the size of the log: one
  // block cache, and one budget for every column family's memtables (a
  // catch-up over millions of events would otherwise grow each to its own
  // 64 MiB, twice over).
  //
  // By column family (`name`): the index and the feed are only ever
  // scanned, so they carry no Bloom filters (a filter answers point reads
  // only, and building one cost every flush, compaction and table file).
  // Data is compressed (LZ4) where it lives, in the last level; a flush
  // (level 0, soon compacted) is written as it is, so a rebuild no longer
  // compresses its documents and feed records twice.
  rocksdb::ColumnFamilyOptions CfOptions(std::string_view name) const {
    const bool scanned_only =
        name.starts_with("case_index_g") || name.starts_with("learning_feed_g");
    rocksdb::ColumnFamilyOptions cf;
    rocksdb::BlockBasedTableOptions t;
    t.block_cache = block_cache_;
    t.cache_index_and_filter_blocks = true;
    if (!scanned_only) {
      t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
      t.partition_filters = true;
      // A Bloom filter over each memtable's keys too: many point reads here
      // miss (a feed record's withdrawn mark, a case not stored yet), and a
      // miss would otherwise search the memtable's skip list. (Measured
      // only together with other changes, bench/RESULTS.md.)
      cf.memtable_prefix_bloom_size_ratio = 0.05;
      cf.memtable_whole_key_filtering = true;
    }
    // Partitioned, so a large table's index and filter are cached in small
    // pieces (engine/src/event_store_impl.cc, CfOptions, says why).
    t.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    t.metadata_block_size = 4096;
    t.cache_index_and_filter_blocks_with_high_priority = true;
    t.pin_top_level_index_and_filter = true;
    t.format_version = 5;
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
    cf.write_buffer_size = 16u << 20;
    cf.max_write_buffer_number = 2;
    cf.compression = rocksdb::kNoCompression;
    cf.bottommost_compression = rocksdb::kLZ4Compression;
    cf.level_compaction_dynamic_level_bytes = true;
    return cf;
  }

  Status Init(const std::string& dir, rocksdb::Env* env = nullptr) {
    dir_ = dir;
    rocksdb::DBOptions& dbo = dbo_;
    if (env != nullptr) dbo.env = env;
    dbo.create_if_missing = true;
    dbo.create_missing_column_families = true;
    dbo.write_buffer_manager =
        std::make_shared<rocksdb::WriteBufferManager>(kMemtableBudget);
    dbo.max_background_jobs = 2;
    // No LOG file on the data volume, and recovery from a full disk is the
    // runner's (caseledger/storage_log.h says why).
    dbo.info_log = RocksLogger(logger_);
    dbo.listeners.push_back(ManualErrorRecovery());
    std::vector<std::string> names;
    rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(dbo, dir, &names);
    if (!ls.ok()) names = {rocksdb::kDefaultColumnFamilyName};
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, CfOptions(n));
    rocksdb::Status opened = OpenDb(names, /*read_only=*/false);
    if (opened.IsNoSpace()) {
      // The disk is full: serve the models as they are from a read-only
      // open (which writes nothing); the runner opens them writable once
      // there is room (ReopenWritable).
      if (OpenDb(names, /*read_only=*/true).ok()) {
        read_only_for_space_ = true;
        opened = rocksdb::Status::OK();
      }
    }
    RETURN_IF_ERROR(FromRocks(opened, "opening read models at " + dir));

    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), kGenerationKey, &value);
    if (s.ok()) {
      generation_ = std::stoull(value);
    } else if (s.IsNotFound()) {
      generation_ = 1;
      RETURN_IF_ERROR(
          FromRocks(db_->Put(rocksdb::WriteOptions(), kGenerationKey, "1"),
                    "generation"));
    } else {
      return FromRocks(s, "reading generation");
    }
    RETURN_IF_ERROR(EnsureGeneration(generation_));
    s = db_->Get(rocksdb::ReadOptions(), CheckpointKey(generation_), &value);
    if (s.ok()) position_.store(FromBe64(value));
    s = db_->Get(rocksdb::ReadOptions(), FeedSeqKey(generation_), &value);
    if (s.ok()) feed_seq_ = FromBe64(value);
    if (read_only_for_space_) {
      // The shape is checked once they open writable (ReopenWritable).
      logger_->error(
          "read models: the disk is full; serving them as they are until "
          "there is room to apply the log");
      std::lock_guard<std::mutex> lk(health_mu_);
      error_ = kDiskFull;
      return Status::OK();
    }
    return CheckShape();
  }

  // Models built in an older shape are rebuilt from the log.
  Status CheckShape() {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kShapeKey, &value);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "reading the shape");
    if (!s.ok() || value != kShape) {
      if (position_.load() > 0) {
        logger_->warn(
            "read models were built in shape {} (now {}): rebuilding from "
            "the log",
            s.ok() ? value : std::string("1"), kShape);
        RETURN_IF_ERROR(Rebuild(RebuildOptions{}));
      }
      RETURN_IF_ERROR(FromRocks(
          db_->Put(rocksdb::WriteOptions(), kShapeKey, kShape), "shape"));
    }
    return Status::OK();
  }

  void Start() override {
    std::lock_guard<std::mutex> lk(run_mu_);
    if (runner_.joinable()) return;
    stop_.store(false);
    runner_ = std::thread([this] { Run(); });
  }

  void Stop() override {
    std::lock_guard<std::mutex> lk(run_mu_);
    stop_.store(true);
    if (runner_.joinable()) runner_.join();
  }

  Status CatchUp() override {
    for (;;) {
      auto events = store_.ReadAll(GlobalPosition(position_.load()), kBatch);
      if (!events.ok()) return events.status();
      if (events->empty()) return Status::OK();
      FoldedBatch b;
      b.events = std::move(*events);
      folder_.Fold(&b);
      RETURN_IF_ERROR(Apply(b, generation_));
    }
  }

  ProjectionHealth Health() const override {
    ProjectionHealth h;
    h.position = position_.load();
    uint64_t committed = store_.committed_position().value();
    h.lag = committed > h.position ? committed - h.position : 0;
    std::lock_guard<std::mutex> lk(health_mu_);
    h.healthy = error_.empty();
    h.error = error_;
    return h;
  }

  bool WaitFor(GlobalPosition position,
               std::chrono::milliseconds timeout) const override {
    std::unique_lock<std::mutex> lk(health_mu_);
    return progress_cv_.wait_for(lk, timeout, [&] {
      return position_.load() >= position.value() || !error_.empty();
    }) && position_.load() >= position.value();
  }

  StatusOr<std::optional<Json>> Case(
      const std::string& case_id) const override {
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), state_cf_, case_id, &value);
    if (s.IsNotFound()) return std::optional<Json>();
    RETURN_IF_ERROR(FromRocks(s, "reading case " + case_id));
    Json doc = service::ParseStoredJson(value);
    if (doc.is_discarded())
      return Status::Corruption("case document " + case_id);
    return std::optional<Json>(std::move(doc));
  }

  StatusOr<CasePage> ListCases(const CaseFilter& f, const std::string& cursor,
                               size_t limit) const override {
    // The most selective index the filter offers.
    std::string prefix = f.stage      ? IndexPrefix('s', *f.stage)
                         : f.lead     ? IndexPrefix('l', *f.lead)
                         : f.category ? IndexPrefix('c', *f.category)
                         : f.reporter ? IndexPrefix('r', *f.reporter)
                         : f.urgency  ? IndexPrefix('u', *f.urgency)
                                      : IndexPrefix('a', "");
    std::string upper = prefix;
    upper.back() = static_cast<char>(upper.back() + 1);
    rocksdb::Slice upper_s(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_s;
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
    CasePage page;
    std::string value;
    for (it->Seek(prefix + cursor); it->Valid(); it->Next()) {
      std::string id = it->key().ToString().substr(prefix.size());
      if (!cursor.empty() && id == cursor) continue;
      if (page.cases.size() == limit) {
        page.next_cursor = page.cases.back().value("case_id", "");
        break;
      }
      rocksdb::Status s =
          db_->Get(rocksdb::ReadOptions(), state_cf_, id, &value);
      RETURN_IF_ERROR(FromRocks(s, "reading case " + id));
      Json doc = service::ParseStoredJson(value);
      if (doc.is_discarded()) return Status::Corruption("case document " + id);
      if (Matches(f, doc)) page.cases.push_back(std::move(doc));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "listing cases"));
    return page;
  }

  Status Rebuild(const RebuildOptions& options) override {
    const uint64_t next = generation_ + 1;
    RETURN_IF_ERROR(DropGeneration(next));  // leftovers of a failed rebuild
    RemoveTableFiles(next);
    written_.Clear();
    RETURN_IF_ERROR(EnsureGeneration(next, /*make_current=*/false));
    folder_.Clear();
    committed_ = Committed{};
    rebuild_feed_seq_ = 0;
    uint64_t pos = 0;
    rocksdb::ColumnFamilyHandle* const index_cf = handles_.at(IndexCf(next));
    Status built = [&]() -> Status {
      // Four threads: one reads the log, one folds, a few batches ahead,
      // this one prepares each batch's writes, and one writes them.
      FoldAhead ahead(store_, *catalog_, !key_.empty());
      BatchWriter writer(
          db_.get(), index_cf, handles_.at(StatsCf(next)),
          {db_->DefaultColumnFamily()},
          rocksdb::Options(db_->GetDBOptions(), CfOptions(IndexCf(next))),
          rocksdb::Options(db_->GetDBOptions(), CfOptions(StatsCf(next))),
          TableFilePrefix(next),
          std::max<size_t>(1, options.index_entries_per_file),
          options.index_runs_at_once,
          BatchWriter::Target{
              handles_.at(StateCf(next)),
              rocksdb::Options(db_->GetDBOptions(), CfOptions(StateCf(next))),
              "case documents", std::max<size_t>(1, options.bytes_per_file)},
          BatchWriter::Target{
              handles_.at(FeedCf(next)),
              rocksdb::Options(db_->GetDBOptions(), CfOptions(FeedCf(next))),
              "feed records", std::max<size_t>(1, options.bytes_per_file)});
      writer_ = &writer;
      stats_in_memory_ = std::clamp<size_t>(options.stats_entries_in_memory, 1,
                                            TableChunk::kMaxOps);
      Status s = [&]() -> Status {
        for (;;) {
          ASSIGN_OR_RETURN(FoldedBatch batch, ahead.Next());
          if (batch.events.empty()) {
            RETURN_IF_ERROR(writer.EndBatches());
            RETURN_IF_ERROR(WriteStats(/*last=*/true));
            return writer.Finish();
          }
          pos = batch.events.back().position.value();
          RETURN_IF_ERROR(Apply(batch, next));
        }
      }();
      writer_ = nullptr;
      return s;
    }();
    if (built.ok()) {
      // Written without the WAL: on disk before it is swapped in.
      std::vector<rocksdb::ColumnFamilyHandle*> cfs = {
          db_->DefaultColumnFamily()};  // its checkpoint and feed sequence
      for (const std::string& name : GenerationCfs(next)) {
        cfs.push_back(handles_.at(name));
      }
      built = FromRocks(db_->Flush(rocksdb::FlushOptions(), cfs),
                        "flushing the rebuilt read models");
    }
    if (!built.ok()) {
      committed_ = Committed{};
      return built;
    }
    // The swap: one write moves the pointer to the new generation. Synced:
    // dropping the old generation below is durable at once (RocksDB syncs
    // its MANIFEST), so a pointer still in an unsynced WAL could be lost to
    // a power cut while the generation it kept pointing at is gone.
    rocksdb::WriteOptions swap;
    swap.sync = true;
    RETURN_IF_ERROR(
        FromRocks(db_->Put(swap, kGenerationKey, std::to_string(next)),
                  "swapping generations"));
    const uint64_t old = generation_;
    {
      std::unique_lock<std::shared_mutex> lk(gen_mu_);
      generation_ = next;
      state_cf_ = handles_.at(StateCf(next));
      index_cf_ = handles_.at(IndexCf(next));
      feed_cf_ = handles_.at(FeedCf(next));
      stats_cf_ = handles_.at(StatsCf(next));
      feed_seq_ = rebuild_feed_seq_;
    }
    position_.store(pos);
    folder_.Clear();
    committed_ = Committed{};
    logger_->info("read models rebuilt to position {} (generation {})", pos,
                  next);
    return DropGeneration(old);
  }

  Status WaitForCompactions(std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      uint64_t busy = 0, n = 0;
      for (const char* p :
           {"rocksdb.num-running-compactions", "rocksdb.num-running-flushes"}) {
        if (db_->GetIntProperty(p, &n)) busy += n;
      }
      {
        std::shared_lock<std::shared_mutex> lk(gen_mu_);
        for (auto* cf : {state_cf_, index_cf_, feed_cf_, stats_cf_}) {
          for (const char* p : {"rocksdb.compaction-pending",
                                "rocksdb.mem-table-flush-pending"}) {
            if (db_->GetIntProperty(cf, p, &n)) busy += n;
          }
        }
      }
      if (busy == 0) return Status::OK();
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::Unavailable("read-model compactions still running");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  StatusOr<std::vector<std::pair<std::string, std::string>>> Dump()
      const override {
    std::vector<std::pair<std::string, std::string>> out;
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    for (auto* cf : {state_cf_, index_cf_, feed_cf_, stats_cf_}) {
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), cf));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        // An overview counter at 0 is the same as none (which of the two a
        // case's coming and going leaves depends on how batches fell).
        if (cf == stats_cf_ && it->key().starts_with(kOverviewCounterPrefix) &&
            FromBe64(it->value().ToString()) == 0) {
          continue;
        }
        out.emplace_back(it->key().ToString(), it->value().ToString());
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "dumping"));
    }
    std::string cp;
    if (db_->Get(rocksdb::ReadOptions(), CheckpointKey(generation_), &cp)
            .ok()) {
      out.emplace_back("checkpoint", std::to_string(FromBe64(cp)));
    }
    if (db_->Get(rocksdb::ReadOptions(), FeedSeqKey(generation_), &cp).ok()) {
      out.emplace_back("feed_seq", std::to_string(FromBe64(cp)));
    }
    return out;
  }

  // Calls visit(value, case id) for each index entry under `tag`, in order,
  // from the first whose value is at least `from`, until it returns false.
  template <typename Visit>
  Status ScanTag(char tag, Visit visit, const std::string& from = {}) const {
    std::string prefix(1, tag);
    prefix.push_back('\0');
    prefix += from;
    std::string upper(1, tag);
    upper.push_back('\x01');
    rocksdb::Slice upper_s(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_s;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      auto [value, id] = SplitIndexKey(it->key().ToString());
      if (!visit(value, id)) break;
    }
    return FromRocks(it->status(), "scanning governance index");
  }

  StatusOr<Json> Governance(const std::string& view, Timestamp now,
                            size_t limit) const override {
    Json items = Json::array();
    RETURN_IF_ERROR(VisitView(view, now, [&](Json item) {
      items.push_back(std::move(item));
      return items.size() < limit;
    }));
    return Json{{"view", view},
                {"as_of", FormatTimestamp(now)},
                {"items", std::move(items)}};
  }

  // Calls `visit` with each item of a governance view, in due order, until
  // it returns false. One item at a time: counting a view of any size takes
  // no more memory than one item.
  Status VisitView(const std::string& view, Timestamp now,
                   const std::function<bool(Json)>& visit) const {
    const std::string now_ts = FormatTimestamp(now);
    const std::string today = now_ts.substr(0, 10);
    // Each view is one index tag. Values are "due|item" (sorted by due),
    // or for the tags without a due time: the override id; "type|event id";
    // "due|acknowledged at".
    enum class Due { kNone, kTime, kDate };
    struct View {
      char tag;
      bool due_filter;   // only items due before now (the index is sorted)
      Due due;           // what the part before '|' is
      const char* item;  // the name of the part after '|'
    };
    static const std::map<std::string, View> kViews = {
        {"overdue-acknowledgements", {'k', true, Due::kTime, ""}},
        {"overdue-reviews", {'v', true, Due::kDate, "review_id"}},
        {"escalations-awaiting-acknowledgement",
         {'e', false, Due::kTime, "escalation_id"}},
        {"consent-overrides", {'o', false, Due::kNone, ""}},
        {"closed-without-outcome-review", {'w', false, Due::kNone, ""}},
        {"overdue-actions", {'t', true, Due::kDate, "action_id"}},
        {"reaudits-due", {'x', false, Due::kDate, "reaudit_id"}},
        {"decisions-without-rationale", {'n', false, Due::kNone, "event_id"}},
        {"late-acknowledgements", {'b', false, Due::kTime, "acknowledged_at"}},
    };
    auto v = kViews.find(view);
    if (v == kViews.end())
      return Status::NotFound("no governance view " + view);
    const View& spec = v->second;
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    RETURN_IF_ERROR(ScanTag(spec.tag, [&](const std::string& value,
                                          const std::string& id) {
      std::string head = value, item;
      if (size_t bar = value.rfind('|');
          bar != std::string::npos && *spec.item) {
        head = value.substr(0, bar);
        item = value.substr(bar + 1);
      }
      const std::string& now_value = spec.due == Due::kDate ? today : now_ts;
      if (spec.due_filter && !(head < now_value)) return false;  // sorted
      Json j = {{"case_id", id}};
      if (*spec.item) j[spec.item] = item;
      if (spec.tag == 'o') j["override_id"] = value;
      if (spec.tag == 'n') j["type"] = head;
      if (spec.tag == 'b') {
        j["due"] = head;
      } else if (spec.due != Due::kNone) {
        j["due"] = head;
        j["overdue"] = head < now_value;
      }
      return visit(std::move(j));
    }));
    return Status::OK();
  }

  // The overview's counters, by tag: bucket -> count, in bucket order.
  using Counters =
      std::map<char, std::vector<std::pair<std::string, uint64_t>>>;
  Status ReadOverviewCounters(Counters* out) const {
    const std::string prefix(kOverviewCounterPrefix);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), stats_cf_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      const std::string_view key = it->key().ToStringView();
      if (key.size() < prefix.size() + 2) continue;
      const uint64_t n = FromBe64(it->value().ToString());
      if (n == 0) continue;
      (*out)[key[prefix.size()]].emplace_back(
          std::string(key.substr(prefix.size() + 2)), n);
    }
    return FromRocks(it->status(), "reading the overview's counters");
  }

  // How many entries of a counted tag whose due (or reported) time, the
  // part of the value before '|', sorts before `bound`: the days before
  // bound's day from the counters, and bound's own day from the index.
  StatusOr<uint64_t> CountBefore(const Counters& counters, char tag,
                                 const std::string& bound) const {
    const std::string day = bound.substr(0, kDayBytes);
    uint64_t n = 0;
    if (auto c = counters.find(tag); c != counters.end()) {
      for (const auto& [bucket, count] : c->second) {
        if (!(bucket < day)) break;
        n += count;
      }
    }
    if (bound.size() <= day.size()) return n;  // none of that day sorts before
    std::string prefix(1, tag);
    prefix.push_back('\0');
    prefix += day;
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, index_cf_));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      auto [value, id] = SplitIndexKey(it->key().ToString());
      if (!(value.substr(0, value.find('|')) < bound)) break;  // sorted
      ++n;
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning governance index"));
    return n;
  }

  // Costs what the number of distinct counted values (stages, months,
  // categories, minutes to acknowledgement, due days) costs, and a scan of
  // today's entries of the time-due views; not the number of cases.
  StatusOr<Json> Overview(Timestamp now) const override {
    const std::string now_ts = FormatTimestamp(now);
    const std::string today = now_ts.substr(0, kDayBytes);
    Counters counters;
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    RETURN_IF_ERROR(ReadOverviewCounters(&counters));
    auto of =
        [&](char tag) -> const std::vector<std::pair<std::string, uint64_t>>& {
      static const std::vector<std::pair<std::string, uint64_t>> kNone;
      auto c = counters.find(tag);
      return c == counters.end() ? kNone : c->second;
    };
    auto total = [&](char tag) {
      uint64_t n = 0;
      for (const auto& [bucket, count] : of(tag)) n += count;
      return n;
    };
    Json out = {{"as_of", now_ts}};
    for (const auto& [tag, name] : std::vector<std::pair<char, const char*>>{
             {'s', "cases_by_stage"},
             {'m', "cases_reported_by_month"},
             {'c', "cases_by_category"},
             {'g', "cases_by_setting"},
             {'z', "closed_cases_by_reason"},
             {'y', "cases_by_outcomes_achieved"}}) {
      Json counts = Json::object();
      for (const auto& [bucket, count] : of(tag)) counts[bucket] = count;
      out[name] = std::move(counts);
    }
    // Time from report to acknowledgement: the median, and how many were
    // acknowledged late (the breaches are a view of their own).
    {
      const uint64_t acknowledged = total('h');
      Json ack = {{"acknowledged", acknowledged},
                  {"acknowledged_late", total('b')}};
      uint64_t seen = 0;
      for (const auto& [minutes, count] : of('h')) {  // zero-padded: sorted
        seen += count;
        if (seen > acknowledged / 2) {
          ack["median_minutes"] = std::stoull(minutes);
          break;
        }
      }
      out["acknowledgement"] = std::move(ack);
    }
    // The views' sizes, as VisitView would count them.
    ASSIGN_OR_RETURN(uint64_t overdue_acks, CountBefore(counters, 'k', now_ts));
    ASSIGN_OR_RETURN(uint64_t overdue_reviews,
                     CountBefore(counters, 'v', today));
    ASSIGN_OR_RETURN(uint64_t overdue_actions,
                     CountBefore(counters, 't', today));
    ASSIGN_OR_RETURN(uint64_t escalations_overdue,
                     CountBefore(counters, 'e', now_ts));
    ASSIGN_OR_RETURN(uint64_t reaudits_overdue,
                     CountBefore(counters, 'x', today));
    out["overdue-acknowledgements"] = {{"count", overdue_acks}};
    out["overdue-reviews"] = {{"count", overdue_reviews}};
    out["escalations-awaiting-acknowledgement"] = {
        {"count", total('e')}, {"overdue", escalations_overdue}};
    out["consent-overrides"] = {{"count", total('o')}};
    out["closed-without-outcome-review"] = {{"count", total('w')}};
    out["overdue-actions"] = {{"count", overdue_actions}};
    out["reaudits-due"] = {{"count", total('x')},
                           {"overdue", reaudits_overdue}};
    out["decisions-without-rationale"] = {{"count", total('n')}};
    out["late-acknowledgements"] = {{"count", total('b')}};
    // Cases not closed, by whole days since the report: under 7, 7 to 30,
    // over 30. Reported at t, days = (now - t) / 1 day, so "under 7" is
    // t > now - 7 days and "over 30" is t <= now - 31 days.
    {
      constexpr int64_t kDay = 86400LL * 1000000;
      auto at_or_before = [&](int64_t days) {
        return CountBefore(
            counters, 'p',
            FormatTimestamp(Timestamp(now.value() - days * kDay + 1)));
      };
      const uint64_t open = total('p');
      ASSIGN_OR_RETURN(uint64_t week_or_more, at_or_before(7));
      ASSIGN_OR_RETURN(uint64_t over_30, at_or_before(31));
      out["open_cases_by_age"] = {{"under_7_days", open - week_or_more},
                                  {"7_to_30_days", week_or_more - over_30},
                                  {"over_30_days", over_30}};
    }
    return out;
  }

  StatusOr<Json> AuditSample(const std::string& month, size_t size,
                             const std::string& seed) const override {
    std::vector<std::string> ids;
    {
      std::shared_lock<std::shared_mutex> lk(gen_mu_);
      RETURN_IF_ERROR(ScanTag(
          'm',
          [&](const std::string& m, const std::string& id) {
            if (m != month) return false;
            ids.push_back(id);
            return true;
          },
          month));
    }
    // Strata: urgent cases and cases with a consent override are always
    // represented; the rest are drawn in an order fixed by the month and the
    // seed, so the same request gives the same sample.
    std::vector<std::pair<std::string, std::string>> urgent, overridden, rest;
    for (const std::string& id : ids) {
      ASSIGN_OR_RETURN(auto doc, Case(id));
      if (!doc) continue;
      if (!doc->value("overrides", Json::array()).empty()) {
        overridden.emplace_back(Sha256Hex(seed + "|" + month + "|" + id), id);
      } else if (doc->value("urgent", false)) {
        urgent.emplace_back(Sha256Hex(seed + "|" + month + "|" + id), id);
      } else {
        rest.emplace_back(Sha256Hex(seed + "|" + month + "|" + id), id);
      }
    }
    for (auto* v : {&urgent, &overridden, &rest})
      std::sort(v->begin(), v->end());
    Json picked = Json::array();
    auto take = [&](std::vector<std::pair<std::string, std::string>>& from,
                    const char* why, size_t n) {
      for (size_t i = 0; i < from.size() && i < n && picked.size() < size;
           ++i) {
        picked.push_back({{"case_id", from[i].second}, {"stratum", why}});
      }
    };
    // At least one of each special stratum (when there is one), then the
    // rest in draw order.
    take(overridden, "consent_override", std::max<size_t>(1, size / 4));
    take(urgent, "urgent", std::max<size_t>(1, size / 4));
    std::vector<std::pair<std::string, std::string>> remaining;
    auto taken = [&](const std::string& id) {
      for (const auto& p : picked)
        if (p["case_id"] == id) return true;
      return false;
    };
    for (auto* v : {&overridden, &urgent, &rest}) {
      for (const auto& e : *v)
        if (!taken(e.second)) remaining.push_back(e);
    }
    std::sort(remaining.begin(), remaining.end());
    take(remaining, "drawn", size);
    return Json{{"month", month},
                {"seed", seed},
                {"population", ids.size()},
                {"cases", picked}};
  }

  StatusOr<FeedPage> Feed(uint64_t after_seq, size_t limit,
                          std::string_view released_before,
                          std::string_view consumer) const override {
    if (key_.empty()) {
      return Status::FailedPrecondition("no pseudonym key is configured");
    }
    FeedPage page;
    page.last_seq = after_seq;
    std::string mark;
    std::unordered_map<std::string, uint64_t> class_sizes;
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), feed_cf_));
    for (it->Seek(Be64(after_seq + 1));
         it->Valid() && page.records.size() < limit; it->Next()) {
      Json r = service::ParseStoredJson(it->value().ToStringView());
      if (r.is_discarded()) return Status::Corruption("feed record");
      const uint64_t seq = FromBe64(it->key().ToString());
      if (!released_before.empty() && r.value("month", "") >= released_before) {
        break;
      }
      const std::string kind = r.value("kind", "");
      if (kind == "case_reported") {
        // k-anonymity, counted when read: a class smaller than k says no
        // more than that a case was reported that month.
        // (Classes repeat within a page: each is read once.)
        const std::string key = ClassKey(r.value("month", ""), r);
        auto size = class_sizes.find(key);
        if (size == class_sizes.end()) {
          std::string n;
          rocksdb::Status gs =
              db_->Get(rocksdb::ReadOptions(), stats_cf_, key, &n);
          if (!gs.ok() && !gs.IsNotFound()) return FromRocks(gs, "reading");
          size = class_sizes.emplace(key, gs.ok() ? FromBe64(n) : 0).first;
        }
        if (size->second < kMinClassSize) {
          for (const char* f :
               {"concern_kind", "setting", "categories", "urgent"}) {
            r[f] = "suppressed";
          }
        }
      } else if (kind == "learning_shared") {
        rocksdb::Status ws = db_->Get(rocksdb::ReadOptions(), stats_cf_,
                                      WithdrawnKey(seq), &mark);
        if (!ws.ok() && !ws.IsNotFound()) return FromRocks(ws, "reading");
        if (ws.ok()) {
          // Corrected after it was shared: the text is no longer given out.
          for (const char* field : {"what_went_well", "what_must_change"}) {
            r[field] = "[withdrawn]";
          }
          r["withdrawn"] = true;
        } else {
          // Scrubbed again with every identifier the case holds now (the
          // patterns were applied when it was written; the text is fixed).
          ASSIGN_OR_RETURN(Identifiers ids,
                           ReadIdentifiers(stats_cf_, r.value("case", "")));
          for (const char* field : {"what_went_well", "what_must_change"}) {
            r[field] = RedactIdentifiers(r.value(field, ""), ids);
          }
        }
      }
      if (!consumer.empty()) {
        r["case"] = ConsumerPseudonym(*hmac_, consumer, r.value("case", ""));
      }
      page.last_seq = seq;
      page.records.push_back(std::move(r));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the feed"));
    return page;
  }

  StatusOr<Json> Summary(const SummaryOptions& o) const override {
    Json out = {{"suppress_below", o.suppress_below},
                {"rounded_to", o.round_to},
                {"by_category", Json::object()},
                {"by_setting", Json::object()},
                {"by_month", Json::object()}};
    // Keys: group \0 month [\0 code]; counts of released months summed.
    std::map<std::pair<std::string, std::string>, uint64_t> sums;
    // (Only these groups' keys: the column family also holds per-case
    // identifiers and k-anonymity classes.)
    std::shared_lock<std::shared_mutex> lk(gen_mu_);
    for (const std::string group : {"category", "setting", "month"}) {
      const std::string prefix = group + '\0';
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), stats_cf_));
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
           it->Next()) {
        const std::string rest = it->key().ToString().substr(prefix.size());
        const size_t sep = rest.find('\0');
        const std::string month = rest.substr(0, sep);
        const std::string code =
            sep == std::string::npos ? month : rest.substr(sep + 1);
        if (!o.released_before.empty() && month >= o.released_before) continue;
        sums[{"by_" + group, code}] += FromBe64(it->value().ToString());
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "reading the summary"));
    }
    // Every code of the vocabularies is listed, and every month from the
    // first to the last, counted or not: a code or month left out would
    // tell a reader "none", where a suppressed one says "fewer than the
    // threshold" (safeguarding.md d: zero is disclosive as well).
    for (const auto& [group, vocabulary] :
         {std::pair{"by_category", "harm_category"},
          std::pair{"by_setting", "setting"}}) {
      for (const std::string& code : catalog_->Vocabulary(vocabulary)) {
        sums.try_emplace({group, code}, 0);
      }
    }
    std::string first_month, last_month;
    for (const auto& [group_code, n] : sums) {
      if (group_code.first != "by_month") continue;
      if (first_month.empty()) first_month = group_code.second;
      last_month = group_code.second;
    }
    for (std::string m = first_month; !m.empty() && m < last_month;) {
      sums.try_emplace({"by_month", m}, 0);
      m = NextMonth(m);
    }
    for (const auto& [group_code, n] : sums) {
      out[group_code.first][group_code.second] =
          n < o.suppress_below ? Json("suppressed")
                               : Json(RoundCount(n, o.round_to));
    }
    if (!o.released_before.empty()) out["released_before"] = o.released_before;
    return out;
  }

 private:
  static bool Matches(const CaseFilter& f, const Json& doc) {
    if (f.stage && doc.value("stage", "") != *f.stage) return false;
    if (f.lead && doc.value("lead_actor_id", "") != *f.lead) return false;
    if (f.reporter && doc.value("reporter_actor_id", "") != *f.reporter)
      return false;
    if (f.urgency &&
        (doc.value("urgent", false) ? "urgent" : "standard") != *f.urgency) {
      return false;
    }
    if (f.category) {
      bool has = false;
      for (const auto& c : doc.value("categories", Json::array()))
        has |= c == *f.category;
      if (!has) return false;
    }
    if (f.ack_overdue) {
      if (doc.contains("acknowledged_at")) return false;
      auto due = ParseTimestamp(doc.value("acknowledgement_due_at", ""));
      if (!due.ok() || !(*due < f.now)) return false;
    }
    if (f.reader && BarredFrom(doc, *f.reader)) return false;
    return true;
  }

  // Creates (and drops) a generation's column families in one call each:
  // RocksDB rewrites and verifies its OPTIONS file once per call (the eight
  // calls of a rebuild were 5% of its instructions over 100,000 events).
  Status EnsureGeneration(uint64_t gen, bool make_current = true) {
    std::vector<std::string> missing;
    for (const std::string& name : GenerationCfs(gen)) {
      if (!handles_.count(name)) missing.push_back(name);
    }
    if (!missing.empty()) {
      std::vector<rocksdb::ColumnFamilyDescriptor> descs;
      for (const std::string& name : missing) {
        descs.emplace_back(name, CfOptions(name));
      }
      std::vector<rocksdb::ColumnFamilyHandle*> made;
      const rocksdb::Status s = db_->CreateColumnFamilies(descs, &made);
      // Those made before a failure are kept, so a retry or the next
      // rebuild's DropGeneration finds them.
      for (rocksdb::ColumnFamilyHandle* h : made) handles_[h->GetName()] = h;
      RETURN_IF_ERROR(FromRocks(s, "creating read-model column families"));
    }
    if (make_current) {
      std::unique_lock<std::shared_mutex> lk(gen_mu_);
      state_cf_ = handles_.at(StateCf(gen));
      index_cf_ = handles_.at(IndexCf(gen));
      feed_cf_ = handles_.at(FeedCf(gen));
      stats_cf_ = handles_.at(StatsCf(gen));
    }
    return Status::OK();
  }

  Status DropGeneration(uint64_t gen) {
    std::vector<rocksdb::ColumnFamilyHandle*> drop;
    for (const std::string& name : GenerationCfs(gen)) {
      auto it = handles_.find(name);
      if (it != handles_.end()) drop.push_back(it->second);
    }
    if (!drop.empty()) {
      RETURN_IF_ERROR(FromRocks(db_->DropColumnFamilies(drop),
                                "dropping read-model column families"));
      for (rocksdb::ColumnFamilyHandle* h : drop) {
        handles_.erase(h->GetName());
        (void)db_->DestroyColumnFamilyHandle(h);
      }
    }
    (void)db_->Delete(rocksdb::WriteOptions(), CheckpointKey(gen));
    (void)db_->Delete(rocksdb::WriteOptions(), FeedSeqKey(gen));
    return Status::OK();
  }

  // Stops the projection at an event it cannot apply: logs why and reports
  // it unhealthy. Never skips the event.
  Status Fail(const std::string& why) {
    logger_->error("projection stopped: {}", why);
    {
      std::lock_guard<std::mutex> lk(health_mu_);
      error_ = why;
    }
    progress_cv_.notify_all();
    return Status::FailedPrecondition(why);
  }

  // Applies one folded batch into generation `gen`: every document, index
  // and feed change and the new checkpoint in one WriteBatch.
  Status Apply(FoldedBatch& b, uint64_t gen) {
    if (!b.failure.empty()) return Fail(b.failure);
    rocksdb::ColumnFamilyHandle* state_cf = handles_.at(StateCf(gen));
    rocksdb::ColumnFamilyHandle* index_cf = handles_.at(IndexCf(gen));
    rocksdb::ColumnFamilyHandle* feed_cf = handles_.at(FeedCf(gen));
    rocksdb::ColumnFamilyHandle* stats_cf = handles_.at(StatsCf(gen));
    uint64_t& feed_seq = gen == generation_ ? feed_seq_ : rebuild_feed_seq_;
    uint64_t seq = feed_seq;  // this batch's last, once written
    if (committed_.generation != gen) {
      committed_ = Committed{};
      committed_.generation = gen;
    }
    // The counters this batch touched, as it leaves them. (A rebuild writes
    // none per batch: it counts straight into what it keeps.)
    std::unordered_map<std::string, uint64_t> touched;
    std::unordered_map<std::string, uint64_t>& stats =
        writer_ != nullptr ? committed_.counters : touched;
    rocksdb::WriteBatch wb;
    // A rebuild's feed records, for its writer.
    std::vector<std::pair<uint64_t, std::string>> feed_records;
    if (!key_.empty()) {
      for (size_t i = 0; i < b.events.size(); ++i) {
        const RecordedEvent& e = b.events[i];
        if (!service::IsCaseStream(e.stream_id)) continue;
        RETURN_IF_ERROR(FeedRecords(
            e, b.feed[i], stats_cf, &stats, [&](std::vector<Member> r) {
              r.push_back(Member::Num("seq", ++seq));
              if (writer_ != nullptr) {
                feed_records.emplace_back(seq, RecordText(std::move(r)));
              } else {
                wb.Put(feed_cf, Be64(seq), RecordText(std::move(r)));
              }
              return seq;
            }));
      }
    }
    // Index and stats writes go into the batch in key order: a memtable
    // inserts a run of ascending keys from where the last insert left off,
    // where keys in random order each search the skip list from its top
    // (RocksDB's write fell from 29% to 17% of a rebuild's applying thread,
    // perf, together with the counters kept below).
    //
    // Index keys (views of the batch's cases' keys): put, else delete.
    std::vector<std::pair<std::string_view, bool>> index_writes;
    std::map<std::string, std::string> stats_writes;
    std::map<std::string, Identifiers> ids_written;  // by pseudonym
    for (const auto& [id, c] : b.cases) {
      // Both sorted: one walk finds what went and what came.
      static const IndexKeySet kNone;
      const IndexKeySet& before = c.keys_before ? *c.keys_before : kNone;
      const IndexKeySet& after = *c.keys;
      for (size_t was = 0, is = 0; was < before.size() || is < after.size();) {
        if (is == after.size() ||
            (was < before.size() && before[was] < after[is])) {
          index_writes.emplace_back(before[was++], false);
        } else if (was == before.size() || after[is] < before[was]) {
          index_writes.emplace_back(after[is++], true);
        } else {
          ++was;
          ++is;
        }
      }
      // (A rebuild's writer takes the documents from the batch.)
      if (writer_ == nullptr) wb.Put(state_cf, id, c.doc);
      if (!c.ids.names.empty() || !c.ids.exact.empty()) {
        RETURN_IF_ERROR(AddIdentifiers(
            stats_cf, CasePseudonym(id), c.first_version == 1, c.ids,
            &stats_writes, writer_ == nullptr ? &ids_written : nullptr));
      }
    }
    // The overview's counters follow the index entries they count.
    std::string counter;
    for (const auto& [k, put] : index_writes) {
      if (!OverviewCounterKey(k, &counter)) continue;
      RETURN_IF_ERROR(BumpCounter(stats_cf, &stats, counter, put ? 1 : -1));
    }
    // (Each key once: an index key ends with its case's id. A rebuild's
    // writer sorts them itself, with those of other batches.)
    if (writer_ == nullptr) std::sort(index_writes.begin(), index_writes.end());
    for (const auto& [k, put] : index_writes) {
      if (writer_ != nullptr) {
        writer_->IndexOps().Add(k, put);
      } else if (put) {
        wb.Put(index_cf, k, "");
      } else {
        wb.Delete(index_cf, k);
      }
    }
    const uint64_t last = b.events.back().position.value();
    // (A rebuild keeps its statistics in memory, below, and hands them to
    // its writer now and then.)
    if (writer_ == nullptr) {
      for (const auto& [k, n] : stats) stats_writes.emplace(k, Be64(n));
      for (const auto& [k, v] : stats_writes) wb.Put(stats_cf, k, v);
    } else {
      // Into the table chunk they will be written from, at once (the last
      // of a key's operations counts); remembered by where they are.
      for (const auto& [k, v] : stats_writes) {
        if (committed_.texts_chunk.value_bytes() + v.size() >
            TableChunk::kMaxValueBytes) {
          RETURN_IF_ERROR(WriteStats());
        }
        committed_.texts[k] = committed_.texts_chunk.size();
        committed_.texts_chunk.Add(k, true, v);
      }
    }
    if (seq != feed_seq) wb.Put(FeedSeqKey(gen), Be64(seq));
    wb.Put(CheckpointKey(gen), Be64(last));
    // Not synced: after a machine crash the batch and its checkpoint are
    // lost together and re-derived from the log. (A rebuild's writer writes
    // its batches; a failure there fails the rebuild.)
    if (writer_ == nullptr) {
      if (rocksdb::Status ws = db_->Write(rocksdb::WriteOptions(), &wb);
          !ws.ok()) {
        committed_ = Committed{};
        return FromRocks(ws, "applying");
      }
    }
    // What the batch wrote is now what is stored (or, in a rebuild, what
    // will be once its writer has written it: reads wait for that).
    feed_seq = seq;
    if (writer_ == nullptr) {
      if (committed_.counters.size() + stats.size() > kCommittedEntries) {
        committed_.counters.clear();
      }
      for (const auto& [k, n] : stats) committed_.counters[k] = n;
      if (committed_.ids.size() + ids_written.size() > kStateCacheEntries) {
        committed_.ids.clear();
      }
      for (auto& [k, ids] : ids_written) committed_.ids[k] = std::move(ids);
    }
    if (gen == generation_) {
      position_.store(last);
      std::lock_guard<std::mutex> lk(health_mu_);
      progress_cv_.notify_all();
    }
    if (writer_ != nullptr) {
      RETURN_IF_ERROR(
          writer_->Write(std::move(wb), std::move(feed_records), std::move(b)));
      if (committed_.counters.size() + committed_.texts_chunk.size() >=
          stats_in_memory_) {
        return WriteStats();
      }
    }
    return Status::OK();
  }

  // A rebuild's learning statistics: the counters and case identifiers it
  // has set since it last wrote them (in `committed_`, unbounded while it
  // runs), handed to its writer and forgotten. What it hands over hides
  // what it wrote before of the same keys. Each entry is what the building
  // would have last written (a counter as it stands, even 0; identifiers
  // as they last changed), so the result is the same. Written this way,
  // not through the memtable: the counters' keys come in no order (a
  // case's identifiers go under its pseudonym), and inserting each into
  // the memtable's skip list was a tenth of a rebuild's time. `last`: the
  // rebuild reads nothing after it (so it need not remember what it wrote).
  Status WriteStats(bool last = false) {
    TableChunk chunk = std::move(committed_.texts_chunk);
    committed_.texts_chunk = TableChunk();
    // (Sized first: growing it, at the end of a rebuild, took half again as
    // long.)
    size_t key_bytes = 0;
    for (const auto& [k, n] : committed_.counters) key_bytes += k.size();
    chunk.Reserve(committed_.counters.size(), key_bytes,
                  8 * committed_.counters.size());
    for (const auto& [k, n] : committed_.counters) chunk.Add(k, true, Be64(n));
    if (!last) {
      for (const auto& [k, n] : committed_.counters) written_.Add(k);
      for (const auto& [k, at] : committed_.texts) written_.Add(k);
    }
    committed_.counters.clear();
    committed_.texts.clear();
    if (chunk.empty()) return Status::OK();
    return writer_->WriteStats(std::move(chunk));
  }

  // Every identifier a case has held, under its pseudonym (so the feed can
  // scrub shared learning again, when it is read, of names the case gained
  // after the learning was approved).
  static std::string IdentifiersKey(const std::string& pseudonym) {
    return std::string("ids") + '\0' + pseudonym;
  }
  StatusOr<Identifiers> ReadIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                                        const std::string& pseudonym) const {
    Identifiers ids;
    std::string value;
    rocksdb::Status gs =
        db_->Get(rocksdb::ReadOptions(), cf, IdentifiersKey(pseudonym), &value);
    if (gs.IsNotFound()) return ids;
    RETURN_IF_ERROR(FromRocks(gs, "reading a case's identifiers"));
    return IdentifiersFromText(value);
  }
  static StatusOr<Identifiers> IdentifiersFromText(const std::string& text) {
    Identifiers ids;
    Json j = service::ParseStoredJson(text);
    if (!j.is_object()) return Status::Corruption("identifiers of a case");
    for (const auto& n : j.value("names", Json::array())) ids.names.insert(n);
    for (const auto& x : j.value("exact", Json::array())) ids.exact.insert(x);
    return ids;
  }
  // A case's identifiers as committed, from the applier's cache or read.
  StatusOr<Identifiers> CommittedIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                                             const std::string& pseudonym) {
    if (auto it = committed_.ids.find(pseudonym); it != committed_.ids.end()) {
      return it->second;
    }
    if (auto it = committed_.texts.find(IdentifiersKey(pseudonym));
        it != committed_.texts.end()) {
      return IdentifiersFromText(
          std::string(committed_.texts_chunk.ValueOf(it->second)));
    }
    if (!MayHaveWritten(IdentifiersKey(pseudonym))) return Identifiers{};
    RETURN_IF_ERROR(DrainWrites());
    return ReadIdentifiers(cf, pseudonym);
  }
  // `is_new`: the case has nothing stored yet. Puts the case's identifiers
  // into `*writes` (key -> value) if they changed, and into `*written` (if
  // given) in any case.
  Status AddIdentifiers(rocksdb::ColumnFamilyHandle* cf,
                        const std::string& pseudonym, bool is_new,
                        const Identifiers& added,
                        std::map<std::string, std::string>* writes,
                        std::map<std::string, Identifiers>* written) {
    Identifiers ids;
    if (!is_new) {
      ASSIGN_OR_RETURN(ids, CommittedIdentifiers(cf, pseudonym));
    }
    const size_t before = ids.names.size() + ids.exact.size();
    ids.names.insert(added.names.begin(), added.names.end());
    ids.exact.insert(added.exact.begin(), added.exact.end());
    if (ids.names.size() + ids.exact.size() != before) {
      (*writes)[IdentifiersKey(pseudonym)] = IdentifiersText(ids);
    }
    if (written != nullptr) (*written)[pseudonym] = std::move(ids);
    return Status::OK();
  }

  // The case's pseudonym, remembered (an HMAC per event is a tenth of a
  // rebuild's time). Only the applying thread calls it.
  const std::string& CasePseudonym(const std::string& case_id) {
    auto it = pseudonyms_.find(case_id);
    if (it != pseudonyms_.end()) return it->second;
    if (pseudonyms_.size() >= kStateCacheEntries) pseudonyms_.clear();
    return pseudonyms_.emplace(case_id, Pseudonym(*hmac_, case_id))
        .first->second;
  }

  // A counter of the stats column family as this batch leaves it: from
  // the batch's own map `stats`, else read into it (0 if absent).
  StatusOr<uint64_t*> LoadCounter(
      rocksdb::ColumnFamilyHandle* stats_cf,
      std::unordered_map<std::string, uint64_t>* stats, const std::string& k) {
    auto it = stats->find(k);
    if (it == stats->end()) {
      if (auto c = committed_.counters.find(k);
          c != committed_.counters.end()) {
        it = stats->emplace(k, c->second).first;
      } else if (!MayHaveWritten(k)) {
        it = stats->emplace(k, 0).first;
      } else {
        RETURN_IF_ERROR(DrainWrites());
        std::string v;
        rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), stats_cf, k, &v);
        if (!gs.ok() && !gs.IsNotFound()) {
          return FromRocks(gs, "reading stats");
        }
        it = stats->emplace(k, gs.ok() ? FromBe64(v) : 0).first;
      }
    }
    return &it->second;
  }
  // Adds `delta` to a counter (never below 0).
  Status BumpCounter(rocksdb::ColumnFamilyHandle* stats_cf,
                     std::unordered_map<std::string, uint64_t>* stats,
                     const std::string& k, int delta) {
    ASSIGN_OR_RETURN(uint64_t * n, LoadCounter(stats_cf, stats, k));
    if (delta < 0 && *n == 0) return Status::OK();
    *n += static_cast<uint64_t>(static_cast<int64_t>(delta));
    return Status::OK();
  }

  // The feed records one event yields. Built only from codes, booleans and
  // months, plus screened learning text: nothing is copied from a payload
  // wholesale, so no personal field can leak by being overlooked.
  template <typename Emit>
  Status FeedRecords(const RecordedEvent& e, const FeedInput& input,
                     rocksdb::ColumnFamilyHandle* stats_cf,
                     std::unordered_map<std::string, uint64_t>* stats,
                     Emit emit) {
    const std::string_view type = e.type;  // compared by length first
    const FeedDetail& in = input.Detail();
    // A record's common fields. Built only for an event that yields a
    // record (a quarter of them): most events yield none.
    const std::string* pseudonym = nullptr;
    std::string month;
    auto base = [&](std::string_view kind) {
      if (pseudonym == nullptr) {
        pseudonym = &CasePseudonym(e.stream_id);
        month = Month(e.recorded_at);
      }
      return std::vector<Member>{Member::Str("case", *pseudonym),
                                 Member::Str("month", month),
                                 Member::Str("kind", kind)};
    };
    auto load = [&](const std::string& k) {
      return LoadCounter(stats_cf, stats, k);
    };
    auto bump = [&](const std::string& k, int delta = 1) {
      return BumpCounter(stats_cf, stats, k, delta);
    };
    // Counts are kept per month reported, so a summary can sum released
    // months only.
    auto bump_report = [&](int delta) -> Status {
      const std::string reported = Month(in.reported_at);
      for (const auto& c : in.categories) {
        RETURN_IF_ERROR(
            bump(std::string("category") + '\0' + reported + '\0' + c, delta));
      }
      RETURN_IF_ERROR(bump(
          std::string("setting") + '\0' + reported + '\0' + in.setting, delta));
      RETURN_IF_ERROR(bump(ClassKey(reported, in), delta));
      return bump(std::string("month") + '\0' + reported, delta);
    };
    if (input.out) {
      // Out of the feed from now on; consumers are told to drop what they
      // hold of the case, and it leaves the counts.
      if (!input.was_out) {
        emit(base("case_withdrawn"));
        RETURN_IF_ERROR(bump_report(-1));
      }
      return Status::OK();
    }
    if (type == "ConcernReported") {
      std::vector<Member> r = base("case_reported");
      AddReportedFields(in, &r);
      emit(std::move(r));
      RETURN_IF_ERROR(bump_report(1));
    } else if (type == "ReviewCompleted" && in.review_kind == "with_person") {
      std::vector<Member> r = base("outcomes_reviewed");
      r.push_back(Member::Str("outcomes_achieved", in.outcomes_achieved));
      r.push_back(Member::Str("feels_safer", in.feels_safer));
      emit(std::move(r));
    } else if (type == "CaseClosed") {
      std::vector<Member> r = base("case_closed");
      r.push_back(Member::Str("reason", in.reason));
      r.push_back(Member::Flag("outcome_review", in.outcome_review));
      emit(std::move(r));
    } else if (type == "LearningScreened" &&
               in.decision == "approved_for_sharing") {
      // The learning text, from its LearningRecorded event (with the
      // corrections made before the screening: the reviewer approved the
      // corrected text), scrubbed of every identifier the case holds: those
      // of earlier batches, kept under its pseudonym, and this batch's.
      if (!in.learning.is_object()) return Status::OK();
      const Json& learning = in.learning;
      const std::string& learning_event_id = in.learning_event_id;
      ASSIGN_OR_RETURN(
          Identifiers ids,
          CommittedIdentifiers(stats_cf, CasePseudonym(e.stream_id)));
      ids.names.insert(in.batch_ids.names.begin(), in.batch_ids.names.end());
      ids.exact.insert(in.batch_ids.exact.begin(), in.batch_ids.exact.end());
      const std::string went_well =
          Scrub(learning.value("what_went_well", ""), ids);
      const std::string must_change =
          Scrub(learning.value("what_must_change", ""), ids);
      const Json themes = learning.value("themes", Json::array());
      const Json settings = learning.value("settings", Json::array());
      const Json share_in = learning.value("share_in", Json::array());
      std::vector<Member> r = base("learning_shared");
      r.push_back(Member::Str("what_went_well", went_well));
      r.push_back(Member::Str("what_must_change", must_change));
      r.push_back(Member::Any("themes", themes));
      r.push_back(Member::Any("settings", settings));
      r.push_back(Member::Any("share_in", share_in));
      const uint64_t shared_seq = emit(std::move(r));
      // Approved again while shared already: both records carry the text,
      // so a later correction must withdraw both. Each links to the one
      // before it.
      ASSIGN_OR_RETURN(uint64_t * shared, load(SharedKey(learning_event_id)));
      // (A record's sequence number is new, so its entries are too: set,
      // not read.)
      (*stats)[PreviousKey(shared_seq)] = *shared;
      *shared = shared_seq;
    } else if (type == "EventAmended" &&
               in.amends_event_type == "LearningRecorded") {
      // Learning corrected after it was shared: what consumers hold may be
      // just what the correction took out. The shared text is withdrawn
      // (its record reads "[withdrawn]" from now on, and a
      // learning_withdrawn record tells consumers to drop their copy); the
      // corrected text is shared only once a reviewer approves it again.
      ASSIGN_OR_RETURN(uint64_t * shared, load(SharedKey(in.amends_event_id)));
      for (uint64_t seq = *shared; seq != 0;) {
        (*stats)[WithdrawnKey(seq)] = 1;
        std::vector<Member> r = base("learning_withdrawn");
        r.push_back(Member::Num("of_seq", seq));
        emit(std::move(r));
        ASSIGN_OR_RETURN(uint64_t * previous, load(PreviousKey(seq)));
        seq = *previous;
      }
      *shared = 0;
    }
    return Status::OK();
  }

  // Stats entries of shared learning: the feed sequence of the latest record
  // that shares a LearningRecorded event's text (0: none now), the record
  // that shared it before (0: none), and a mark on a record whose text was
  // withdrawn.
  static std::string SharedKey(const std::string& learning_event_id) {
    return std::string("shared") + '\0' + learning_event_id;
  }
  static std::string WithdrawnKey(uint64_t seq) {
    return std::string("withdrawn") + '\0' + Be64(seq);
  }
  static std::string PreviousKey(uint64_t seq) {
    return std::string("previous") + '\0' + Be64(seq);
  }

  // Opens the database (db_ and every column family in handles_).
  rocksdb::Status OpenDb(const std::vector<std::string>& names,
                         bool read_only) {
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, CfOptions(n));
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s =
        read_only
            ? rocksdb::DB::OpenForReadOnly(dbo_, dir_, descs, &handles, &raw)
            : rocksdb::DB::Open(dbo_, dir_, descs, &handles, &raw);
    if (!s.ok()) return s;
    db_.reset(raw);
    handles_.clear();
    for (size_t i = 0; i < names.size(); ++i) handles_[names[i]] = handles[i];
    return s;
  }

  // Opened read-only on a full disk: tries each second to open the models
  // writable, with readers held off (gen_mu_) while the database is
  // replaced. False if stopped first.
  bool ReopenWritable() {
    std::vector<std::string> names;
    for (const auto& [name, h] : handles_) names.push_back(name);
    while (!stop_.load()) {
      {
        std::unique_lock<std::shared_mutex> lk(gen_mu_);
        if (db_) {
          for (auto& [name, h] : handles_) {
            (void)db_->DestroyColumnFamilyHandle(h);
          }
          handles_.clear();
          (void)db_->Close();
          db_.reset();
        }
        rocksdb::Status s = OpenDb(names, /*read_only=*/false);
        if (s.ok()) read_only_for_space_ = false;
        // Readers never find no database: read-only again, retried (with
        // them held off) for as long as that fails.
        while (!s.ok() && !(s = OpenDb(names, /*read_only=*/true)).ok() &&
               !stop_.load()) {
          logger_->error("read models: cannot reopen, even read-only: {}",
                         s.ToString());
          std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        if (!s.ok()) return false;  // stopped, with no database
        state_cf_ = handles_.at(StateCf(generation_));
        index_cf_ = handles_.at(IndexCf(generation_));
        feed_cf_ = handles_.at(FeedCf(generation_));
        stats_cf_ = handles_.at(StatsCf(generation_));
      }
      if (!read_only_for_space_) {
        if (Status shape = CheckShape(); !shape.ok()) {
          (void)Fail("checking the read models' shape: " + shape.ToString());
          return false;
        }
        logger_->warn("read models: space again; applying from position {}",
                      position_.load());
        std::lock_guard<std::mutex> lk(health_mu_);
        error_.clear();
        return true;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    return false;
  }

  void Run() {
    if (read_only_for_space_ && !ReopenWritable()) return;
    auto sub = store_.Subscribe(GlobalPosition(position_.load()));
    while (!stop_.load()) {
      auto batch = sub->Next(kBatch, std::chrono::milliseconds(100));
      if (!batch.ok()) {
        if (!batch.status().IsUnavailable()) {
          std::lock_guard<std::mutex> lk(health_mu_);
          error_ = "reading the log: " + batch.status().ToString();
        }
        return;
      }
      if (batch->empty()) continue;
      FoldedBatch b;
      b.events = std::move(*batch);
      folder_.Fold(&b);
      if (Status st = Apply(b, generation_); !st.ok()) {
        if (st.IsNoSpace() && b.failure.empty()) {
          // Nothing of the batch was written: wait for room, then fold it
          // again from the checkpoint.
          if (!WaitForSpace(st)) return;
          sub = store_.Subscribe(GlobalPosition(position_.load()));
          continue;
        }
        // Stopped and unhealthy, never silently: a fold failure says so
        // itself; anything else (a storage failure) is said here.
        if (Health().healthy) (void)Fail("applying: " + st.ToString());
        return;
      }
    }
  }

  // After a batch failed for want of space: unhealthy (saying so) until
  // RocksDB resumes, tried each second. The folder forgets the states it
  // folded for the batch that was not written. False if stopped meanwhile.
  bool WaitForSpace(const Status& failure) {
    logger_->error("read models: the disk is full ({}); waiting for space",
                   failure.ToString());
    {
      std::lock_guard<std::mutex> lk(health_mu_);
      error_ = kDiskFull;
    }
    folder_.Clear();
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      rocksdb::Status rs = db_->Resume();
      if (!rs.ok()) continue;
      logger_->warn("read models: space again; applying from position {}",
                    position_.load());
      std::lock_guard<std::mutex> lk(health_mu_);
      error_.clear();
      return true;
    }
    return false;
  }

  const EventStore& store_;
  std::shared_ptr<const domain::EventCatalog> catalog_;
  std::shared_ptr<spdlog::logger> logger_;
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> handles_;
  // Guards the current generation's CFs, and db_ itself while a full-disk
  // start's read-only open is replaced (ReopenWritable).
  mutable std::shared_mutex gen_mu_;
  rocksdb::DBOptions dbo_;
  // Opened read-only because the disk was full (runner and Init only).
  bool read_only_for_space_ = false;
  static constexpr char kDiskFull[] =
      "the disk is full: the read models wait for space";
  uint64_t generation_ = 1;
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* feed_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* stats_cf_ = nullptr;
  const std::string key_;  // pseudonym key; empty: no feed
  const std::unique_ptr<const HmacSha256> hmac_;  // keyed by key_
  uint64_t feed_seq_ = 0;  // last feed sequence (applier only)
  uint64_t rebuild_feed_seq_ = 0;
  // Applier only: the folding stage of the runner and CatchUp (a rebuild
  // folds with one of its own).
  Folder folder_{store_, *catalog_, !key_.empty()};
  std::shared_ptr<rocksdb::Cache> block_cache_ =
      rocksdb::NewLRUCache(kBlockCacheBytes);
  std::unordered_map<std::string, std::string> pseudonyms_;  // case -> HMAC
  // A rebuild's table files, before they are ingested: the directory and
  // the start of their names.
  std::string TableFilePrefix(uint64_t gen) const {
    return dir_ + "/rebuild-" + std::to_string(gen) + "-";
  }
  // Those a failed rebuild of `gen` may have left (named "rebuild-index-"
  // by earlier versions).
  void RemoveTableFiles(uint64_t gen) const {
    const std::string prefix =
        std::filesystem::path(TableFilePrefix(gen)).filename().string();
    const std::string earlier = "rebuild-index-" + std::to_string(gen) + "-";
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir_, ec)) {
      const std::string name = f.path().filename().string();
      if (name.rfind(prefix, 0) == 0 || name.rfind(earlier, 0) == 0) {
        std::filesystem::remove(f.path(), ec);
      }
    }
  }

  // The keys a rebuild has written into its (new, so at first empty)
  // stats column family: a key it has not written is not there, so the
  // rebuild need not read it (or wait for its writer to read it).
  KeyFilter written_;
  bool MayHaveWritten(const std::string& key) const {
    return writer_ == nullptr || written_.MayContain(key);
  }

  // A rebuild's writer, while it runs: the applying thread's batches go to
  // it, and the applying thread's reads of the read models wait for it.
  BatchWriter* writer_ = nullptr;
  // While it runs: how many statistics entries it keeps in memory, at most,
  // before it writes them.
  size_t stats_in_memory_ = 0;
  Status DrainWrites() {
    return writer_ != nullptr ? writer_->Drain() : Status::OK();
  }
  // Applier only: values of the stats column family of one generation as
  // last written (so a batch reads a counter or a case's identifiers from
  // memory, not RocksDB). Bounded: cleared when full (a rebuild's: written
  // when full, see WriteStats).
  struct Committed {
    uint64_t generation = 0;  // 0: none
    std::unordered_map<std::string, uint64_t> counters;
    std::unordered_map<std::string, Identifiers> ids;  // by pseudonym
    // A rebuild's, instead of `ids`: identifiers entries as they changed,
    // to write (see WriteStats), and where each key's last is among them.
    TableChunk texts_chunk;
    std::unordered_map<std::string, size_t> texts;
  };
  Committed committed_;
  std::atomic<uint64_t> position_{0};
  mutable std::mutex health_mu_;
  mutable std::condition_variable progress_cv_;
  std::string error_;  // guarded by health_mu_
  std::mutex run_mu_;
  std::atomic<bool> stop_{false};
  std::thread runner_;
};

}  // namespace

bool BarredFrom(const Json& doc, const domain::Actor& actor) {
  for (const auto& id : doc.value("barred_actor_ids", Json::array())) {
    if (id == actor.id) return true;
  }
  return doc.value("all_dsls_barred", false) &&
         actor.role == domain::Role::kDsl;
}

StatusOr<std::unique_ptr<ReadModels>> internal::OpenWithEnv(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key,
    rocksdb::Env* env) {
  if (!pseudonym_key.empty() && pseudonym_key.size() < 16) {
    return Status::InvalidArgument(
        "the pseudonym key must be at least 16 bytes");
  }
  auto impl = std::make_unique<ReadModelsImpl>(
      store, std::move(catalog), std::move(logger), std::move(pseudonym_key));
  RETURN_IF_ERROR(impl->Init(dir, env));
  return std::unique_ptr<ReadModels>(std::move(impl));
}

StatusOr<std::unique_ptr<ReadModels>> ReadModels::Open(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key) {
  return internal::OpenWithEnv(dir, store, std::move(catalog),
                               std::move(logger), std::move(pseudonym_key),
                               nullptr);
}

}  // namespace caseledger::projections

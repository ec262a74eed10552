// ReadModels: the read side, built from the log and never written to
// directly. Three models: the current state of every case (its document,
// and indexes for lists); governance oversight (nine views of what is
// overdue or needs a second look, an overview kept as counters, a monthly
// audit sample); and the anonymised learning feed with its summary counts.
//
// The read models live in their own RocksDB (the directory given to Open,
// by convention <data>/projections), in column families of their own. A
// runner thread follows the log through EventStore::Subscribe from its
// checkpoint; each batch's read-model writes and the new checkpoint go in
// one WriteBatch, so a crash never leaves a model ahead of or behind its
// checkpoint, and a restart resumes where it stopped.
//
// A projection that fails on an event stops there, logs the event and the
// reason, and reports itself unhealthy: it never skips an event.
//
// Thread-safe: queries may run on any thread while the runner applies.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "caseledger/domain/decide.h"
#include "caseledger/domain/policy.h"
#include "caseledger/event_store.h"
#include "caseledger/service/anonymise.h"

namespace spdlog {
class logger;
}

namespace caseledger::projections {

struct ProjectionHealth {
  uint64_t position = 0;  // last global position applied
  uint64_t lag = 0;       // events committed to the log but not yet applied
  bool healthy = true;
  std::string error;  // why it stopped, when unhealthy
};

struct CaseFilter {
  std::optional<std::string> stage;     // reported, acknowledged, open, ...
  std::optional<std::string> lead;      // lead actor id
  std::optional<std::string> urgency;   // urgent, standard
  std::optional<std::string> category;  // a harm category
  std::optional<std::string> reporter;  // reporter actor id
  // Acknowledgement overdue at `now`: not yet taken by a lead and past its
  // deadline. Needs `now`.
  bool ack_overdue = false;
  Timestamp now;
  // Leave out the cases this reader is barred from (a conflict of
  // interest); a page's cursor never names one of them.
  std::optional<domain::Actor> reader;
};

// Whether a case document bars `actor`, as domain::CaseState::IsBarred does
// for the folded state.
bool BarredFrom(const nlohmann::json& doc, const domain::Actor& actor);

struct CasePage {
  std::vector<nlohmann::json> cases;  // case documents, in case-id order
  std::string next_cursor;            // empty on the last page
};

struct FeedPage {
  std::vector<nlohmann::json> records;  // in feed sequence order
  uint64_t last_seq = 0;                // of the last record returned
};

// Aggregates offered next to the feed follow official statistics practice:
// a count below `suppress_below` is shown as "suppressed", any other is
// rounded to the nearest `round_to`.
struct SummaryOptions {
  uint64_t suppress_below = 5;
  uint64_t round_to = 5;
  // "YYYY-MM": count only cases reported in months before it (published
  // periods are closed ones, so a count never moves under a reader's eyes);
  // empty: every month.
  std::string released_before;
};

// The learning summary: counts of reported cases by category, setting and
// month. Every code of the vocabularies and every month from the first to
// the last is listed; a count is nullopt where it is suppressed (below
// suppress_below), else rounded to the nearest `rounded_to`.
struct LearningSummary {
  uint64_t suppress_below = 0;
  uint64_t rounded_to = 0;
  std::string released_before;  // as asked; empty: every month
  using Counts = std::map<std::string, std::optional<uint64_t>>;
  Counts by_category, by_setting, by_month;
};

// One item of a governance view.
struct GovernanceItem {
  std::string case_id;
  // The view's key for the item and the key's name ("review_id",
  // "escalation_id", "action_id", "reaudit_id", "event_id",
  // "acknowledged_at"); the name is empty in views without one.
  std::string item_name, item;
  std::string override_id;  // consent-overrides
  std::string event_type;   // decisions-without-rationale
  // When the item falls (or, for a late acknowledgement, fell) due: a date
  // or a time; empty in views without one.
  std::string due;
  std::optional<bool> overdue;  // in views whose items wait for their due
};

struct GovernanceView {
  std::string view;
  Timestamp as_of;
  std::vector<GovernanceItem> items;  // in due order
};

// Counts over every case, kept as counters (see ReadModels::Overview).
struct GovernanceOverview {
  Timestamp as_of;
  using Counts = std::map<std::string, uint64_t>;  // bucket -> cases
  Counts cases_by_stage, cases_reported_by_month, cases_by_category,
      cases_by_setting, closed_cases_by_reason, cases_by_outcomes_achieved;
  struct Acknowledgement {
    uint64_t acknowledged = 0;
    uint64_t acknowledged_late = 0;
    std::optional<uint64_t> median_minutes;  // none acknowledged: nullopt
    bool operator==(const Acknowledgement&) const = default;
  };
  Acknowledgement acknowledgement;
  // Each view's size (ReadModels::Governance), by view name; `overdue` for
  // the views whose items are listed before their due too.
  struct ViewSize {
    uint64_t count = 0;
    std::optional<uint64_t> overdue;
    bool operator==(const ViewSize&) const = default;
  };
  std::map<std::string, ViewSize> views;
  // Cases not closed, by whole days since they were reported.
  struct OpenByAge {
    uint64_t under_7_days = 0;
    uint64_t from_7_to_30_days = 0;
    uint64_t over_30_days = 0;
    bool operator==(const OpenByAge&) const = default;
  };
  OpenByAge open_cases_by_age;
};

struct AuditSample {
  std::string month;  // YYYY-MM
  std::string seed;
  uint64_t population = 0;  // cases reported that month
  struct Pick {
    std::string case_id;
    std::string stratum;  // "consent_override", "urgent" or "drawn"
    bool operator==(const Pick&) const = default;
  };
  std::vector<Pick> cases;
  bool operator==(const AuditSample&) const = default;
};

// How a rebuild trades memory for files.
struct RebuildOptions {
  // Index entries gathered in memory (about 100 bytes each) before they are
  // sorted into a run file of their own (by a thread of their own, while
  // the next are gathered: up to three such chunks are in memory at once).
  // The runs are merged into the index at the end, on two threads.
  size_t index_entries_per_file = 125000;
  // Runs kept apart, at most, before they are merged into one (the last
  // merge holds each run's file open twice). At least 2.
  size_t index_runs_at_once = 32;
  // Bytes of case documents, and of feed records, in one table file (they
  // are written into it as they come, not kept in memory).
  size_t bytes_per_file = 64u << 20;
  // Learning statistics kept in memory (counters, about 100 bytes each,
  // and cases' identifiers, a few hundred) before they are written into a
  // table file and ingested.
  size_t stats_entries_in_memory = 250000;
};

class ReadModels {
 public:
  // Opens (creating) the read-model store in `dir`. `store` and `catalog`
  // must outlive it. `pseudonym_key` keys the HMAC-SHA256 under which cases
  // appear in the learning feed (at least 16 bytes; rotating it and
  // rebuilding re-keys every record).
  static StatusOr<std::unique_ptr<ReadModels>> Open(
      const std::string& dir, const EventStore& store,
      std::shared_ptr<const domain::EventCatalog> catalog,
      std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key = "");
  virtual ~ReadModels() = default;

  // Opens a case's sealed identifiers (service::Identifiers::sealed) into
  // `*out`: the learning feed scrubs shared learning of them when it is
  // read. The read models hold no keys: this comes from the service
  // (service::OpenSealedIdentifiers over its sealer).
  using IdentifierOpener = std::function<Status(
      const std::string& case_id, const std::set<std::string>& sealed,
      service::Identifiers* out)>;
  // Set before the feed is read. Without one, shared learning of a case
  // with sealed identifiers reads "[withheld]" (it cannot be checked).
  virtual void SetIdentifierOpener(IdentifierOpener opener) = 0;

  // Starts the runner thread (catch up from the checkpoint, then live).
  virtual void Start() = 0;
  // Stops the runner after the batch in hand. Idempotent.
  virtual void Stop() = 0;
  // Applies everything committed so far, on the caller's thread (for tools
  // and tests; not while the runner runs).
  virtual Status CatchUp() = 0;

  virtual ProjectionHealth Health() const = 0;
  // Blocks until the projection has applied `position` (read your own
  // write), up to `timeout`; false on timeout or if unhealthy.
  virtual bool WaitFor(GlobalPosition position,
                       std::chrono::milliseconds timeout) const = 0;

  // One case's document; nullopt if the case is unknown.
  virtual StatusOr<std::optional<nlohmann::json>> Case(
      const std::string& case_id) const = 0;
  // Cases matching `filter`, after `cursor`, at most `limit`, served from an
  // index (never a scan of every case unless no filter narrows it).
  virtual StatusOr<CasePage> ListCases(const CaseFilter& filter,
                                       const std::string& cursor,
                                       size_t limit) const = 0;

  // The anonymised learning feed: records with sequence > `after_seq`. It
  // never holds a field marked personal, a name, contact detail, narrative
  // or exact date: cases appear under a keyed pseudonym, dates as months, and
  // only learning text written for sharing, approved by a reviewer's
  // screening, and scrubbed of e-mail addresses, phone numbers and the names
  // the case holds. With `released_before` ("YYYY-MM"), the page ends at
  // the first record of that month or later (so what a reader sees is a
  // prefix, and no record leaves before its month is released: its arrival
  // time would date it); empty: no such end. With `consumer` (the reader's
  // actor id), each case appears under that consumer's own pseudonym, so
  // two consumers cannot link what they hold by it; empty: the pseudonym
  // the feed is stored under.
  virtual StatusOr<FeedPage> Feed(uint64_t after_seq, size_t limit,
                                  std::string_view released_before,
                                  std::string_view consumer = {}) const = 0;

  // Counts of reported cases by category, setting and month, suppressed and
  // rounded (SummaryOptions).
  virtual StatusOr<LearningSummary> Summary(
      const SummaryOptions& options) const = 0;

  // Governance oversight (computed against `now`, so tests can fix it),
  // the first `limit` items of one view, in due order, served from the
  // governance indexes:
  //   overdue-acknowledgements     reports not taken by a lead, past due
  //   overdue-reviews              reviews not completed, past their date
  //   escalations-awaiting-acknowledgement  (each says whether overdue)
  //   consent-overrides            every override
  //   closed-without-outcome-review
  //   overdue-actions              actions not done, past their date
  //   reaudits-due                 re-audits not done (each: overdue?)
  //   decisions-without-rationale  decisions recorded by code alone
  //   late-acknowledgements        reports taken after their deadline
  //   erasure-requests             erasure requests awaiting a decision
  //   legal-holds                  cases on legal hold
  //   personal-data-erased         each erasure done (scope "*": the case,
  //                                "person:<ref>": one person)
  // kNotFound for another view name.
  virtual StatusOr<GovernanceView> Governance(const std::string& view,
                                              Timestamp now,
                                              size_t limit) const = 0;
  // Counts: cases by stage, month reported, category, setting, closure
  // reason and outcomes achieved; cases not closed by age (under 7 days, 7
  // to 30, over 30); time to acknowledgement (how many, how many late, the
  // median in minutes); and the size of every view above. Kept as counters:
  // its cost grows with the number of distinct values, not of cases.
  virtual StatusOr<GovernanceOverview> Overview(Timestamp now) const = 0;
  // What retention may erase now: each closed case, not on legal hold and
  // not erased, whose retention period under `rules` (the rule for its
  // kind, domain::RetentionRuleFor) has ended at `now`, as (case id, rule
  // name); by kind, then oldest closure first; at most `limit`. Reads only
  // the index entries of the cases due (and one more per kind).
  struct RetentionItem {
    std::string case_id;
    std::string rule;
    bool operator==(const RetentionItem&) const = default;
  };
  virtual StatusOr<std::vector<RetentionItem>> RetentionDue(
      const std::vector<domain::RetentionRule>& rules, Timestamp now,
      size_t limit) const = 0;
  // The month's audit sample (YYYY-MM): deterministic for a month and seed,
  // stratified so that cases with a consent override and urgent cases are
  // always represented.
  virtual StatusOr<projections::AuditSample> AuditSample(
      const std::string& month, size_t size, const std::string& seed) const = 0;

  // Rebuilds every read model from position 0 into fresh column families,
  // then swaps them in and drops the old ones. The runner must be stopped.
  virtual Status Rebuild(const RebuildOptions& options) = 0;
  Status Rebuild() { return Rebuild(RebuildOptions{}); }
  // Waits, up to `timeout`, until RocksDB has no flush or compaction of the
  // read models pending or running (a rebuild merges what it writes itself
  // and leaves little or nothing). kUnavailable on timeout.
  virtual Status WaitForCompactions(std::chrono::milliseconds timeout) = 0;

  // Every key and value of the current read models, in order (tests compare
  // a rebuild with incremental building byte for byte).
  virtual StatusOr<std::vector<std::pair<std::string, std::string>>> Dump()
      const = 0;
};

}  // namespace caseledger::projections

// EventCatalog: every domain event type, its JSON Schemas (one per version),
// what each schema marks as personal, and the upcasters that turn an old
// version of a payload into the current one.
//
// The schemas are those in schemas/events/, compiled into the binary, so the
// code and the schemas it was built with cannot drift apart.
//
// Thread safety: a loaded catalog is immutable; every method is const and
// may be called from any number of threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/status.h"

namespace caseledger::domain {

// The event types that are not a case's own: access records (CaseRead, on
// a case's access stream) and bearer tokens (TokenIssued, TokenRevoked, on
// "sys.tokens"). The service writes them; no command decides them.
inline bool IsSystemEventType(std::string_view type) {
  return type == "CaseRead" || type == "TokenIssued" || type == "TokenRevoked";
}

class EventCatalog {
 public:
  // Parses every embedded schema. Fails (kInvalidArgument, naming the file)
  // only if a schema shipped with this build is broken.
  static StatusOr<std::shared_ptr<const EventCatalog>> Load();

  ~EventCatalog();
  EventCatalog(const EventCatalog&) = delete;
  EventCatalog& operator=(const EventCatalog&) = delete;

  // Every event type, sorted.
  std::vector<std::string> Types() const;
  bool Knows(std::string_view type) const;
  // The version decide() writes; 0 for an unknown type.
  uint32_t CurrentVersion(std::string_view type) const;

  // Validates a payload against `type` at `version`. On failure the status
  // is InvalidField naming the most specific offending field (a JSON
  // pointer, "" for the document) and why.
  Status Validate(std::string_view type, uint32_t version,
                  const nlohmann::json& payload) const;

  // The text of a schema file shipped with this build (e.g.
  // "ConcernReported.v1.json", "common.v1.json"), for clients that build
  // forms from it; nullopt for any other name.
  static std::optional<std::string_view> SchemaDocument(std::string_view file);

  // The codes of a shared vocabulary (the enum of common.v1.json's
  // definition `name`, e.g. "harm_category", "setting"), in schema order;
  // empty if there is no such vocabulary.
  std::vector<std::string> Vocabulary(std::string_view name) const;

  // JSON pointers of the fields of `type`@`version` marked "x-personal",
  // with "-" standing for every item of an array, e.g.
  // "/people_involved/-/name". A field listed covers everything below it.
  std::vector<std::string> PersonalPaths(std::string_view type,
                                         uint32_t version) const;
  // The same for the fields marked "x-shareable" (text written for
  // sharing, not yet screened).
  std::vector<std::string> ShareablePaths(std::string_view type,
                                          uint32_t version) const;

  // Turns a stored payload of `type`@`version` into the current version,
  // applying each upcaster in turn (v1 -> v2 -> ...). kInvalidArgument for
  // an unknown type or a version newer than this build knows.
  StatusOr<nlohmann::json> Upcast(std::string_view type, uint32_t version,
                                  nlohmann::json payload) const;

 private:
  struct Impl;
  explicit EventCatalog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace caseledger::domain

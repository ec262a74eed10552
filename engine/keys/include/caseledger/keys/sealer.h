// Sealing: every field a schema marks x-personal (and x-shareable: text
// written for sharing may name someone until it is screened), encrypted in
// the payload
// before the event is appended, and opened again on the way out to a role
// that may see it. Only the service layer seals and unseals; the log, its
// hashes and the read models hold sealed values only.
//
// A sealed value replaces the field's value (a string, or a whole object
// such as a contact) with an object of one member:
//
//   {"$sealed": "1|<scope>|<event id>|<path>|<base64(nonce ‖ ciphertext ‖
//   tag)>"}
//
// where <scope> names the data key ("case", or "person:<person_ref>"),
// <path> is the field's JSON pointer in the event's payload, and the
// plaintext is the field's JSON text. The AEAD's associated data is the
// case id, the event id, the path and the scope: a sealed value copied into
// another case, event or field does not open. Schema validation of a
// payload happens before sealing; a schema never allows an object whose
// only member is "$sealed", so a sealed value cannot be mistaken for data.
//
// Which key: a field inside an object that has a person_ref (a person
// involved, a consent, an owner who is a person of the case, ...) is that
// person's; any other is the case's. So erasing one person erases their
// name, contact details and what was recorded about them alone, and leaves
// the case's narrative, which erasing the case's key erases.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "caseledger/keys/keys.h"
#include "caseledger/status.h"
#include "caseledger/types.h"

namespace caseledger::domain {
class EventCatalog;
}

namespace caseledger::keys {

// What a personal value reads as once its key is destroyed.
inline constexpr std::string_view kErasedMarker = "[erased]";
// What a personal value reads as to a role that may not see it.
inline constexpr std::string_view kWithheldMarker = "[withheld]";

class Sealer {
 public:
  Sealer(std::shared_ptr<const domain::EventCatalog> catalog, KeyStore* keys);

  // Seals every personal field of `payload`, event `event_id` of case
  // `case_id`, of `type`@`version` (EventAmended's corrected fields by the
  // amended event's own annotations). Creates the data keys it needs,
  // durably, before returning. kFailedPrecondition if one was destroyed.
  Status Seal(std::string_view case_id, const EventId& event_id,
              std::string_view type, uint32_t version,
              nlohmann::json* payload) const;

  // Opens every sealed value in `*payload`, an event's payload as stored:
  // each must name `event_id` and the path where it is, else kCorruption
  // (moved). A value whose key was destroyed becomes kErasedMarker.
  Status UnsealEvent(std::string_view case_id, const EventId& event_id,
                     nlohmann::json* payload) const;

  // Opens every sealed value anywhere in `*doc` (a read model's document,
  // where values sit elsewhere than in their event): each by the event id
  // and path it names. A value whose key was destroyed becomes
  // kErasedMarker.
  Status UnsealDocument(std::string_view case_id, nlohmann::json* doc) const;

  // Replaces every sealed value in `*doc` with kWithheldMarker (for a role
  // that may not see personal data), or kErasedMarker where the key was
  // destroyed. Decrypts nothing.
  void Withhold(std::string_view case_id, nlohmann::json* doc) const;

  // Whether `value` is a sealed value.
  static bool IsSealed(const nlohmann::json& value);

  // The key store it seals with (erasure destroys keys in it).
  KeyStore& keys() const { return *keys_; }

 private:
  std::shared_ptr<const domain::EventCatalog> catalog_;
  KeyStore* keys_;
};

}  // namespace caseledger::keys

// Learning text's anonymisation: what identifies a person in a case's
// payloads, and how text written for sharing is scrubbed of it. The service
// scrubs learning when a reviewer approves it for sharing (it holds the
// plaintext), and the learning feed scrubs it again when it is read.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "caseledger/keys/sealer.h"
#include "caseledger/status.h"

namespace simdjson::dom {
class element;
}  // namespace simdjson::dom

namespace caseledger::service {

// What identifies a person in a case's payloads, to scrub from text written
// for sharing: names (and screen names), redacted word by word as well as
// whole; contact details (e-mail, phone, address and its parts), redacted
// as written.
//
// Where those values are sealed (encrypted at rest, engine/keys), what is
// collected is the sealed value with the key it stood under, in `sealed`:
// "key \t 0|1 (in a person's object) \t token", for OpenSealedIdentifiers
// to open where the keys are.
struct Identifiers {
  std::set<std::string> names;
  std::set<std::string> exact;
  std::set<std::string> sealed;
  std::string sealed_case;  // the case `sealed` belongs to, where known
};

// Adds every value that identifies a person, anywhere in a payload, to
// `*out`: values under name-like keys, a person's description (how to
// recognise them, e.g. a screen name), and contact details.
void CollectIdentifiers(const nlohmann::json& j, Identifiers* out);
// The same, from simdjson's parse of a payload's text (a key given twice
// gives both its values, where the document keeps only the last).
void CollectParsedIdentifiers(const simdjson::dom::element& j,
                              Identifiers* out);

// Opens each of `sealed` (entries of Identifiers::sealed, of case
// `case_id`) and adds what identifies a person in it to `*out`, as
// CollectIdentifiers would have from the plaintext. Erased values add
// nothing.
Status OpenSealedIdentifiers(const keys::Sealer& sealer,
                             std::string_view case_id,
                             const std::set<std::string>& sealed,
                             Identifiers* out);

// Replaces every whole-word, case-insensitive (ASCII) occurrence of `word`
// in `*text` with "[redacted]", leftmost first, matches not overlapping. A
// word's edge that is a letter or digit (or part of a multi-byte UTF-8
// character, or "_") must not touch another such character in the text.
// `*lower` is `*text` lowercased (ASCII), and is kept so. With
// `match_case`, only occurrences written exactly as `word` are.
void RedactWord(std::string* text, std::string* lower, const std::string& word,
                bool match_case = false);

// Every identifier in `ids` becomes "[redacted]": a name whole, then word
// by word (split at anything not a letter or digit, so "Anne-Marie
// O'Brien" gives Anne, Marie and Brien), each also with a plural "s" ("the
// Smiths"), then its initials in capitals (AMOB, A.M.O.B., AB...);
// contact details as written.
std::string RedactIdentifiers(std::string text, const Identifiers& ids);

// Every e-mail address in `text` becomes "[redacted]": what the regex
// [A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,} replaces, leftmost first
// and greedy, found in time linear in the text.
std::string RedactEmails(const std::string& text);

// Text written for sharing, screened once more before it leaves: e-mail
// addresses, phone numbers (a run of digits and separators with eight
// digits or more), dates (written out with a capitalised month name, or in
// numbers), ages ("aged 34", "a 34-year-old"), UK postcodes, and
// everything in `ids` become "[redacted]".
std::string Scrub(std::string text, const Identifiers& ids);

}  // namespace caseledger::service

#include "projections/src/anonymise.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <sstream>
#include <string_view>
#include <vector>

#include "projections/src/json_writer.h"

namespace caseledger::projections::internal {
namespace {

using Json = nlohmann::json;

bool IsNameKey(std::string_view k) {
  const auto ends_with = [&k](std::string_view suffix) {
    return k.size() >= suffix.size() &&
           k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return k == "name" || (ends_with("_name") && !ends_with("organisation_name"));
}

// Letters and digits, and every byte of a multi-byte UTF-8 character (so
// "Zoë" stays one word).
bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80) != 0;
}

char AsciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
std::string AsciiLower(std::string_view s) {
  std::string out(s.size(), '\0');
  std::transform(s.begin(), s.end(), out.begin(),
                 [](char c) { return AsciiLower(c); });
  return out;
}

}  // namespace

namespace {

// Whether CollectString may keep a string under `key`: every key it keeps
// ends in one of these letters (a payload's strings are mostly under
// others, skipped at once).
bool MayIdentify(std::string_view key) {
  const char last = key.empty() ? '\0' : key.back();
  return last == 'e' || last == 'n' || last == 'l' || last == 's';
}

// One string of a payload, under `key`, in an object that describes a
// person (has a person_ref) or not.
void CollectString(std::string_view key, std::string_view text, bool person,
                   Identifiers* out) {
  if (IsNameKey(key) || (person && key == "description")) {
    out->names.emplace(text);
  } else if (key == "email" || key == "phone") {
    out->exact.emplace(text);
  } else if (key == "address") {
    out->exact.emplace(text);
    std::istringstream parts{std::string(text)};
    for (std::string part; std::getline(parts, part, ',');) {
      const size_t from = part.find_first_not_of(" \t\n");
      const size_t to = part.find_last_not_of(" \t\n");
      if (from != std::string::npos && to - from >= 3) {
        out->exact.insert(part.substr(from, to - from + 1));
      }
    }
  }
}

}  // namespace

void CollectIdentifiers(const Json& j, Identifiers* out) {
  if (j.is_object()) {
    const bool person = j.contains("person_ref");
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) {
        CollectString(k, v.get_ref<const std::string&>(), person, out);
      } else {
        CollectIdentifiers(v, out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) CollectIdentifiers(v, out);
  }
}

void CollectParsedIdentifiers(const simdjson::dom::element& j,
                              Identifiers* out) {
  if (j.is_object()) {
    const simdjson::dom::object object(j);
    // Whether the object describes a person: asked only of an object with
    // a description (the one key that depends on it).
    std::optional<bool> person;
    // A key given twice: nlohmann keeps its last value only; both are
    // collected here (more to scrub, never less).
    for (auto [k, v] : object) {
      if (v.is_string()) {
        if (!MayIdentify(k)) continue;
        if (k == "description" && !person) {
          person = false;
          for (auto [pk, pv] : object) *person = *person || pk == "person_ref";
        }
        CollectString(k, std::string_view(v), person.value_or(false), out);
      } else if (v.is_object() || v.is_array()) {
        CollectParsedIdentifiers(v, out);
      }
    }
  } else if (j.is_array()) {
    const simdjson::dom::array array(j);
    for (simdjson::dom::element v : array) {
      if (v.is_object() || v.is_array()) CollectParsedIdentifiers(v, out);
    }
  }
}

// The candidates are found with a substring search of the lowercased text,
// so a word that does not occur costs one scan and no copy.
void RedactWord(std::string* text, std::string* lower,
                const std::string& word) {
  if (word.empty() || text->size() < word.size()) return;
  const std::string lower_word = AsciiLower(word);
  const bool word_front = IsWordChar(word.front());
  const bool word_back = IsWordChar(word.back());
  std::string out;
  size_t copied = 0;  // text[0, copied) is in `out` already
  for (size_t p = lower->find(lower_word); p != std::string::npos;
       p = lower->find(lower_word, p + 1)) {
    const size_t end = p + word.size();
    if ((p == 0 || !IsWordChar((*text)[p - 1]) || !word_front) &&
        (end == text->size() || !IsWordChar((*text)[end]) || !word_back)) {
      out.append(*text, copied, p - copied);
      out += "[redacted]";
      copied = end;
      p = end - 1;  // matches do not overlap
    }
  }
  if (copied == 0) return;  // no match
  out.append(*text, copied, std::string::npos);
  *text = std::move(out);
  *lower = AsciiLower(*text);
}

std::string RedactIdentifiers(std::string text, const Identifiers& ids) {
  std::set<std::string> words(ids.exact.begin(), ids.exact.end());
  words.erase("");
  for (const std::string& n : ids.names) {
    if (n.empty()) continue;
    words.insert(n);
    // Split twice: at non-word characters ("QuinceyB_77"), and at "_" too
    // ("QuinceyB").
    for (const bool underscore_splits : {false, true}) {
      std::string w;
      for (size_t i = 0; i <= n.size(); ++i) {
        if (i < n.size() && IsWordChar(n[i]) &&
            !(underscore_splits && n[i] == '_')) {
          w.push_back(n[i]);
          continue;
        }
        if (w.size() >= 2) {
          words.insert(w);
          words.insert(w + "s");
        }
        w.clear();
      }
    }
  }
  // Longest first, so a full name goes before its parts.
  std::vector<std::string> ordered(words.begin(), words.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  std::string lower = AsciiLower(text);
  for (const std::string& w : ordered) RedactWord(&text, &lower, w);
  return text;
}

std::string RedactEmails(const std::string& text) {
  const auto is_alpha = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  };
  const auto is_alnum = [&](char c) {
    return is_alpha(c) || (c >= '0' && c <= '9');
  };
  const auto is_local = [&](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
           c == '-';
  };
  const auto is_domain = [&](char c) {
    return is_alnum(c) || c == '.' || c == '-';
  };
  std::string out;
  size_t done = 0;  // text before this is in `out`, or was redacted
  for (size_t at = text.find('@'); at != std::string::npos;
       at = text.find('@', at + 1)) {
    // The local part: the run of its characters before the '@', from
    // where the last match ended at the earliest.
    size_t begin = at;
    while (begin > done && is_local(text[begin - 1])) --begin;
    if (begin == at) continue;
    // The domain: the longest run of its characters after the '@' that
    // ends in a dot and two or more letters, with something before that
    // dot (the regex's greedy domain, backtracking to its last such dot).
    size_t run_end = at + 1;
    while (run_end < text.size() && is_domain(text[run_end])) ++run_end;
    size_t end = std::string::npos;
    for (size_t dot = run_end; dot-- > at + 2;) {
      if (text[dot] != '.' || dot + 2 >= run_end) continue;
      if (is_alpha(text[dot + 1]) && is_alpha(text[dot + 2])) {
        end = dot + 3;
        while (end < text.size() && is_alpha(text[end])) ++end;
        break;
      }
    }
    if (end == std::string::npos) continue;
    out.append(text, done, begin - done);
    out += "[redacted]";
    done = end;
    at = end - 1;
  }
  if (done == 0) return text;
  out.append(text, done, std::string::npos);
  return out;
}

std::string Scrub(std::string text, const Identifiers& ids) {
  static const std::regex kPhone(R"(\+?[0-9][0-9 \t().\-/]{4,}[0-9])");
  static const std::string kMonth =
      "(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\\.?";
  static const std::regex kDayMonth(
      "\\b[0-9]{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?" + kMonth +
          "(?:\\s+[0-9]{2,4})?",
      std::regex::icase);
  static const std::regex kMonthDay(
      "\\b" + kMonth + "\\s+[0-9]{1,2}(?:st|nd|rd|th)?\\b(?:,?\\s+[0-9]{4})?",
      std::regex::icase);
  // Each pattern needs a character most learning text lacks (an e-mail
  // address an "@", the others a digit): without it the pattern cannot
  // match, and the scan is skipped. (E-mail addresses are found by hand,
  // in linear time: std::regex backtracks quadratically over a long run of
  // letters before an "@".)
  if (text.find('@') != std::string::npos) text = RedactEmails(text);
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    text = std::regex_replace(text, kPhone, "[redacted]");
    text = std::regex_replace(text, kDayMonth, "[redacted]");
    text = std::regex_replace(text, kMonthDay, "[redacted]");
  }
  return RedactIdentifiers(std::move(text), ids);
}

std::string IdentifiersText(const Identifiers& ids) {
  Writer w;  // members in nlohmann's (sorted) order
  w.Open('{');
  w.Strings("exact", ids.exact);
  w.Strings("names", ids.names);
  w.Close('}');
  return w.Take();
}

}  // namespace caseledger::projections::internal

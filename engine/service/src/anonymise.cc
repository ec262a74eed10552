#include "caseledger/service/anonymise.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <sstream>
#include <string_view>
#include <vector>

namespace caseledger::service {
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
  return last == 'e' || last == 'n' || last == 'l' || last == 's' ||
         last == 't';
}

// What in a person's description may identify them: a quoted phrase, as
// written (redacted whole); words with a digit, "_" or "@", or a capital
// inside (a screen name such as QuinceyB_77), and capitalised words after
// the first (names, redacted word by word). "Joined the session under the
// screen name 'PB'" gives PB; the everyday words of a description ("the",
// "session", "name") would otherwise be redacted from every learning text.
void CollectDescription(std::string_view text, Identifiers* out) {
  const auto is_quote = [](std::string_view t, size_t i) {
    return t[i] == '\'' || t[i] == '"' ||
           (i + 2 < t.size() && static_cast<unsigned char>(t[i]) == 0xE2 &&
            static_cast<unsigned char>(t[i + 1]) == 0x80 &&
            (static_cast<unsigned char>(t[i + 2]) & 0xF8) == 0x98);
  };
  bool quoted = false;
  std::string phrase;  // the quoted words so far
  bool first = true;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t' || text[i] == '\n') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < text.size() && text[end] != ' ' && text[end] != '\t' &&
           text[end] != '\n') {
      ++end;
    }
    std::string_view token = text.substr(i, end - i);
    // Quotes and punctuation at the edges; a quote opens or closes.
    bool opens = false, closes = false;
    while (!token.empty() && !IsWordChar(token.front())) {
      opens = opens || is_quote(token, 0);
      token.remove_prefix(1);
    }
    while (!token.empty() && !IsWordChar(token.back())) {
      closes = closes || token.back() == '\'' || token.back() == '"' ||
               (static_cast<unsigned char>(token.back()) & 0xC0) == 0x80;
      token.remove_suffix(1);
    }
    if (opens) {
      quoted = true;
      phrase.clear();
    }
    if (quoted && !token.empty()) {
      phrase += (phrase.empty() ? "" : " ") + std::string(token);
    }
    bool marked = false, capital_inside = false;
    for (size_t k = 0; k < token.size(); ++k) {
      const char c = token[k];
      marked = marked || (c >= '0' && c <= '9') || c == '_' || c == '@';
      capital_inside = capital_inside || (k > 0 && c >= 'A' && c <= 'Z');
    }
    const bool capitalised =
        !token.empty() && token.front() >= 'A' && token.front() <= 'Z';
    if (!token.empty() && !quoted &&
        (marked || capital_inside || (capitalised && !first))) {
      out->names.emplace(token);
    }
    if (closes && quoted) {
      quoted = false;
      if (!phrase.empty()) out->exact.insert(phrase);
    }
    first = false;
    i = end;
  }
}

// One string of a payload, under `key`, in an object that describes a
// person (has a person_ref) or not.
void CollectString(std::string_view key, std::string_view text, bool person,
                   Identifiers* out) {
  if (IsNameKey(key)) {
    out->names.emplace(text);
  } else if (person && key == "description") {
    CollectDescription(text, out);
  } else if (key == "email" || key == "phone") {
    out->exact.emplace(text);
  } else if (key == "address") {
    out->exact.emplace(text);
    std::istringstream parts{std::string(text)};
    for (std::string part; std::getline(parts, part, ',');) {
      const size_t from = part.find_first_not_of(" \t\n");
      const size_t to = part.find_last_not_of(" \t\n");
      if (from == std::string::npos || to - from < 3) continue;
      const std::string trimmed = part.substr(from, to - from + 1);
      out->exact.insert(trimmed);
      // "27 Tenterfield Close" (or "12A Mill Lane") is also written
      // without its number.
      const auto digit = [&](size_t k) {
        return trimmed[k] >= '0' && trimmed[k] <= '9';
      };
      size_t k = 0;
      while (k < trimmed.size() && digit(k)) ++k;
      if (k == 0) continue;
      if (k < trimmed.size() &&
          std::isalpha(static_cast<unsigned char>(trimmed[k])) &&
          (k + 1 == trimmed.size() || trimmed[k + 1] == ' ')) {
        ++k;
      }
      while (k < trimmed.size() && trimmed[k] == ' ') ++k;
      if (trimmed.size() - k >= 4) out->exact.insert(trimmed.substr(k));
    }
  }
}

// Whether a value under `key` identifies a person (what CollectString
// keeps, by key alone).
bool IdentifyingKey(std::string_view key, bool person) {
  return IsNameKey(key) || (person && key == "description") || key == "email" ||
         key == "phone" || key == "address" || key == "contact";
}

void CollectSealed(std::string_view key, std::string_view token, bool person,
                   Identifiers* out) {
  if (!IdentifyingKey(key, person)) return;
  // key \t 0|1 \t token (neither a key nor a token holds a tab).
  std::string entry;
  entry.reserve(key.size() + token.size() + 3);
  entry.append(key);
  entry += person ? "\t1\t" : "\t0\t";
  entry.append(token);
  out->sealed.insert(std::move(entry));
}

}  // namespace

Status OpenSealedIdentifiers(const keys::Sealer& sealer,
                             std::string_view case_id,
                             const std::set<std::string>& sealed,
                             Identifiers* out) {
  for (const std::string& entry : sealed) {
    const size_t a = entry.find('\t');
    const size_t b = a == std::string::npos ? a : entry.find('\t', a + 1);
    if (b == std::string::npos || b != a + 2) {
      return Status::Corruption("a sealed identifier entry is malformed");
    }
    const std::string key = entry.substr(0, a);
    const bool person = entry[a + 1] == '1';
    Json value = {{"$sealed", entry.substr(b + 1)}};
    RETURN_IF_ERROR(sealer.UnsealDocument(case_id, &value));
    if (value.is_string() && value == keys::kErasedMarker) continue;
    Json payload = {{key, std::move(value)}};
    if (person) payload["person_ref"] = "";
    CollectIdentifiers(payload, out);
  }
  return Status::OK();
}

void CollectIdentifiers(const Json& j, Identifiers* out) {
  if (j.is_object()) {
    const bool person = j.contains("person_ref");
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) {
        CollectString(k, v.get_ref<const std::string&>(), person, out);
      } else if (keys::Sealer::IsSealed(v)) {
        CollectSealed(k, v.begin()->get_ref<const std::string&>(), person, out);
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
        // A sealed value: an object whose one member is "$sealed".
        if (v.is_object() && MayIdentify(k)) {
          const simdjson::dom::object inner(v);
          std::string_view token;
          if (inner.size() == 1 &&
              inner["$sealed"].get_string().get(token) == simdjson::SUCCESS) {
            bool is_person = false;
            for (auto [pk, pv] : object) {
              is_person = is_person || pk == "person_ref";
            }
            CollectSealed(k, token, is_person, out);
            continue;
          }
        }
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
void RedactWord(std::string* text, std::string* lower, const std::string& word,
                bool match_case) {
  if (word.empty() || text->size() < word.size()) return;
  const std::string needle = match_case ? word : AsciiLower(word);
  const std::string& haystack = match_case ? *text : *lower;
  const bool word_front = IsWordChar(word.front());
  const bool word_back = IsWordChar(word.back());
  std::string out;
  size_t copied = 0;  // text[0, copied) is in `out` already
  for (size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + 1)) {
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

namespace {

// A name's initials, as text writes them: "Mae Orr" gives MO, M.O. and
// M. O.; a name of three words also its first and last (M.J.O., MO); a
// hyphenated or apostrophised part counts as one word and as two
// ("Kenji Watanabe-Ross": KW and KWR).
std::vector<std::string> Initials(const std::string& name) {
  std::vector<std::vector<char>> sets;
  for (const bool spaces_only : {true, false}) {
    std::vector<char> letters;
    for (size_t i = 0; i < name.size(); ++i) {
      const bool starts = IsWordChar(name[i]) &&
                          (i == 0 || (spaces_only ? name[i - 1] == ' '
                                                  : !IsWordChar(name[i - 1])));
      if (starts && std::isalpha(static_cast<unsigned char>(name[i]))) {
        letters.push_back(static_cast<char>(
            std::toupper(static_cast<unsigned char>(name[i]))));
      }
    }
    if (letters.size() < 2 || letters.size() > 4) continue;
    sets.push_back(letters);
    if (letters.size() > 2) sets.push_back({letters.front(), letters.back()});
  }
  std::vector<std::string> out;
  for (const auto& set : sets) {
    std::string plain, dotted, spaced;
    for (char c : set) {
      plain += c;
      dotted += std::string(1, c) + ".";
      spaced += (spaced.empty() ? "" : " ") + std::string(1, c) + ".";
    }
    out.push_back(plain);
    out.push_back(dotted);
    out.push_back(spaced);
  }
  return out;
}

}  // namespace

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
  // Initials only as written, in capitals: "IT" for Isla Tate, not "it".
  std::set<std::string> initials;
  for (const std::string& n : ids.names) {
    for (std::string& i : Initials(n)) initials.insert(std::move(i));
  }
  std::vector<std::string> by_length(initials.begin(), initials.end());
  std::sort(by_length.begin(), by_length.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  for (const std::string& w : by_length) {
    RedactWord(&text, &lower, w, /*match_case=*/true);
  }
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

namespace {

// The names of the months and their abbreviations, as dates write them:
// capitalised ("March", "Mar", "Sept") or in capitals. Only these: a word
// that merely begins like one ("decisions", "marches", "mayors") is not a
// month, and neither is "may" written in lower case.
std::string MonthPattern() {
  static const char* const kMonths[][2] = {
      {"Jan", "uary"},   {"Feb", "ruary"}, {"Mar", "ch"},    {"Apr", "il"},
      {"May", ""},       {"Jun", "e"},     {"Jul", "y"},     {"Aug", "ust"},
      {"Sep", "tember"}, {"Oct", "ober"},  {"Nov", "ember"}, {"Dec", "ember"}};
  // An abbreviation may end in a dot, a whole name does not ("3 May." ends
  // a sentence).
  std::string out = "(?:Sept\\.?|SEPT\\.?";
  for (const auto& [abbr, rest] : kMonths) {
    for (bool upper : {false, true}) {
      std::string a = abbr, r = rest;
      if (upper) {
        for (char& c : a) c = static_cast<char>(std::toupper(c));
        for (char& c : r) c = static_cast<char>(std::toupper(c));
      }
      out += "|" + a + (r.empty() ? "" : "(?:" + r + "|\\.)?");
    }
  }
  return out + ")(?![A-Za-z])";
}

// Replaces each match of `re` in `text` that `keep_if` accepts with
// "[redacted]".
std::string ReplaceMatches(const std::string& text, const std::regex& re,
                           bool (*accept)(const std::string&)) {
  std::string out;
  size_t copied = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re);
       it != std::sregex_iterator(); ++it) {
    const std::string m = it->str();
    if (accept && !accept(m)) continue;
    out.append(text, copied, static_cast<size_t>(it->position()) - copied);
    out += "[redacted]";
    copied = static_cast<size_t>(it->position() + it->length());
  }
  if (copied == 0) return text;
  out.append(text, copied, std::string::npos);
  return out;
}

// A phone number has eight digits or more (a UK number ten or eleven,
// with its area code); "2024/25" and "10:30-12:00" are not one.
bool EnoughDigitsForAPhone(const std::string& m) {
  return std::count_if(m.begin(), m.end(),
                       [](char c) { return c >= '0' && c <= '9'; }) >= 8;
}

}  // namespace

std::string Scrub(std::string text, const Identifiers& ids) {
  static const std::regex kPhone(R"(\+?[0-9][0-9 \t().\-/]{4,}[0-9])");
  static const std::string kMonth = MonthPattern();
  static const std::regex kDayMonth(
      "\\b[0-9]{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?" + kMonth +
      "(?:,?\\s+[0-9]{4}(?![0-9]))?");
  static const std::regex kMonthDay(
      "\\b" + kMonth +
      "\\s+[0-9]{1,2}(?:st|nd|rd|th)?\\b(?:,?\\s+[0-9]{4}(?![0-9]))?");
  // 03/03/2025, 3.3.25, 2025-03-03.
  static const std::regex kNumericDate(
      R"(\b(?:[0-9]{1,2}[/.\-][0-9]{1,2}[/.\-](?:[0-9]{4}|[0-9]{2})|[0-9]{4}-[0-9]{2}-[0-9]{2})\b)");
  // "aged 34", "age 71", "a 34-year-old", "34 years old", "34 yrs old",
  // "34 years of age".
  static const std::regex kAge(
      R"(\b(?:aged?\s+(?:of\s+)?[0-9]{1,3}\b|[0-9]{1,3}(?:\s*-\s*|\s+)(?:years?|yrs?)(?:\s*-\s*|\s+)old\b|[0-9]{1,3}\s+(?:years|yrs)\s+of\s+age\b))",
      std::regex::icase);
  // UK postcodes: "EX4 9ZZ", "SW1A 1AA".
  static const std::regex kPostcode(
      R"(\b[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][A-Z]{2}\b)");
  // Each pattern needs a character most learning text lacks (an e-mail
  // address an "@", the others a digit): without it the pattern cannot
  // match, and the scan is skipped. (E-mail addresses are found by hand,
  // in linear time: std::regex backtracks quadratically over a long run of
  // letters before an "@".)
  if (text.find('@') != std::string::npos) text = RedactEmails(text);
  if (std::any_of(text.begin(), text.end(),
                  [](char c) { return c >= '0' && c <= '9'; })) {
    // Dates and ages before phones: a phone's pattern would take part of
    // a date and leave the rest.
    text = ReplaceMatches(text, kNumericDate, nullptr);
    text = ReplaceMatches(text, kDayMonth, nullptr);
    text = ReplaceMatches(text, kMonthDay, nullptr);
    text = ReplaceMatches(text, kAge, nullptr);
    text = ReplaceMatches(text, kPostcode, nullptr);
    text = ReplaceMatches(text, kPhone, EnoughDigitsForAPhone);
  }
  return RedactIdentifiers(std::move(text), ids);
}

}  // namespace caseledger::service

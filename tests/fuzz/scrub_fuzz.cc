// The learning feed's text scrubber: text and identifiers of any shape. It
// never crashes, never splits a UTF-8 character (the feed writes its output
// as JSON), leaves no contact detail it was given as a whole word, and
// finds the e-mail addresses its regex would.
// Input: identifiers, one per line, then a NUL, then the text; a line
// starting with '@' is a contact detail (exact), others are names.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "projections/src/anonymise.h"

namespace {

bool IsUtf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (16u << 10)) return 0;
  std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  if (nul == std::string::npos) return 0;
  caseledger::projections::internal::Identifiers ids;
  size_t start = 0;
  while (start < nul) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos || end > nul) end = nul;
    std::string line = input.substr(start, end - start);
    if (!line.empty() && line[0] == '@') {
      if (line.size() > 1) ids.exact.insert(line.substr(1));
    } else if (!line.empty()) {
      ids.names.insert(line);
    }
    start = end + 1;
  }
  const std::string text = input.substr(nul + 1);
  // The hand-written e-mail scan replaces exactly what the regex it stands
  // for replaces (on short texts: the regex is quadratic).
  if (text.size() <= 512) {
    static const std::regex kEmail(
        R"([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})");
    if (caseledger::projections::internal::RedactEmails(text) !=
        std::regex_replace(text, kEmail, "[redacted]")) {
      __builtin_trap();
    }
  }
  bool all_utf8 = IsUtf8(text);
  for (const auto& n : ids.names) all_utf8 = all_utf8 && IsUtf8(n);
  for (const auto& e : ids.exact) all_utf8 = all_utf8 && IsUtf8(e);
  const std::string out = caseledger::projections::internal::Scrub(text, ids);
  if (all_utf8 && !IsUtf8(out)) __builtin_trap();
  // No contact detail it was given stands as a whole word (RedactWord's
  // rule: its edges touch no letter, digit, "_" or multi-byte character)
  // outside what was redacted.
  auto word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
           (static_cast<unsigned char>(c) & 0x80) != 0;
  };
  for (const auto& e : ids.exact) {
    if (e.size() < 2 || !word(e.front()) || !word(e.back())) continue;
    for (size_t at = out.find(e); at != std::string::npos;
         at = out.find(e, at + 1)) {
      const bool whole =
          (at == 0 || !word(out[at - 1])) &&
          (at + e.size() == out.size() || !word(out[at + e.size()]));
      if (whole) __builtin_trap();
    }
  }
  return 0;
}

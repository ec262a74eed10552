// The learning text scrubber measured on a labelled corpus
// (data/scrub_corpus.jsonl: learning sentences, what each case holds about
// its people, and every identifying span of each sentence, by kind).
//
// Two figures, for bench/RESULTS.md: identifiers missed (an identifying
// span with a word of two or more characters left in the scrubbed text;
// must be none) and harmless words redacted (words outside every
// identifying span that did not survive; target under 2%). Which words
// survived is found by aligning the words of the text with those of the
// scrubbed text (longest common subsequence).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "projections/src/anonymise.h"

namespace caseledger::projections::internal {
namespace {

using Json = nlohmann::json;

struct Word {
  size_t begin, end;
  std::string text;
};

bool IsWordByte(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80) != 0;
}

std::vector<Word> Words(const std::string& text) {
  std::vector<Word> out;
  for (size_t i = 0; i < text.size();) {
    if (!IsWordByte(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsWordByte(text[j])) ++j;
    out.push_back({i, j, text.substr(i, j - i)});
    i = j;
  }
  return out;
}

// Which words of `a` are in a longest common subsequence with `b`.
std::vector<bool> Kept(const std::vector<Word>& a, const std::vector<Word>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<uint16_t>> l(n + 1, std::vector<uint16_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      l[i][j] = a[i].text == b[j].text
                    ? static_cast<uint16_t>(l[i + 1][j + 1] + 1)
                    : std::max(l[i + 1][j], l[i][j + 1]);
    }
  }
  std::vector<bool> kept(n, false);
  for (size_t i = 0, j = 0; i < n && j < m;) {
    if (a[i].text == b[j].text) {
      kept[i] = true;
      ++i;
      ++j;
    } else if (l[i + 1][j] >= l[i][j + 1]) {
      ++i;
    } else {
      ++j;
    }
  }
  return kept;
}

TEST(ScrubCorpusTest, MissesNoIdentifierAndKeepsHarmlessWords) {
  const std::filesystem::path path =
      std::filesystem::path(CASELEDGER_SOURCE_DIR) /
      "tests/projections/data/scrub_corpus.jsonl";
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  size_t sentences = 0, with_identifiers = 0, identifiers = 0, missed = 0;
  size_t harmless = 0, harmless_redacted = 0;
  std::map<std::string, size_t> missed_by_kind, identifiers_by_kind;
  std::map<std::string, size_t> redacted_words;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const Json item = Json::parse(line);
    ++sentences;
    const std::string text = item.at("text");
    Identifiers ids;
    CollectIdentifiers(item.at("case"), &ids);
    const std::string scrubbed = Scrub(text, ids);
    const std::vector<Word> words = Words(text);
    const std::vector<bool> kept = Kept(words, Words(scrubbed));

    // Every occurrence of every labelled span.
    std::vector<bool> identifying(words.size(), false);
    if (!item.at("identifiers").empty()) ++with_identifiers;
    for (const Json& id : item.at("identifiers")) {
      const std::string span = id.at("text");
      const std::string kind = id.at("kind");
      for (size_t at = text.find(span); at != std::string::npos;
           at = text.find(span, at + 1)) {
        ++identifiers;
        ++identifiers_by_kind[kind];
        bool left = false;
        for (size_t w = 0; w < words.size(); ++w) {
          if (words[w].end <= at || words[w].begin >= at + span.size()) {
            continue;
          }
          identifying[w] = true;
          left = left || (kept[w] && words[w].text.size() >= 2);
        }
        if (left) {
          ++missed;
          ++missed_by_kind[kind];
          ADD_FAILURE() << item.at("id") << ": " << kind << " \"" << span
                        << "\" left in: " << scrubbed;
        }
      }
    }
    for (size_t w = 0; w < words.size(); ++w) {
      if (identifying[w]) continue;
      ++harmless;
      if (!kept[w]) {
        ++harmless_redacted;
        ++redacted_words[words[w].text];
        std::cout << "  harmless word redacted in " << item.at("id") << ": \""
                  << words[w].text << "\"\n";
      }
    }
  }
  const double rate = harmless == 0
                          ? 0.0
                          : 100.0 * static_cast<double>(harmless_redacted) /
                                static_cast<double>(harmless);
  std::cout << "scrub corpus: " << sentences << " sentences ("
            << with_identifiers << " with identifiers), " << identifiers
            << " identifiers, " << missed << " missed; " << harmless
            << " harmless words, " << harmless_redacted << " redacted (" << rate
            << "%)\n";
  for (const auto& [kind, n] : identifiers_by_kind) {
    std::cout << "  " << kind << ": " << n << " identifiers, "
              << missed_by_kind[kind] << " missed\n";
  }
  EXPECT_GE(sentences, 200u);
  EXPECT_EQ(missed, 0u);
  EXPECT_LT(rate, 2.0);
}

}  // namespace
}  // namespace caseledger::projections::internal

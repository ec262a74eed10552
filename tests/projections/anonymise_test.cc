// The learning feed's text anonymisation, on its own: what it collects as
// identifying, and that redaction finds every occurrence a plain scan finds.
// (read_models_test.cc checks the feed end to end.)
#include "projections/src/anonymise.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace caseledger::projections::internal {
namespace {

using Json = nlohmann::json;

bool WordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         (static_cast<unsigned char>(c) & 0x80) != 0;
}
char Lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// What RedactWord must do, written as the plainest scan: at each position,
// leftmost first, a case-insensitive (ASCII) match of `word` whose
// word-character edges touch no word character is replaced, and the scan
// goes on after it.
std::string PlainScan(const std::string& text, const std::string& word) {
  if (word.empty()) return text;
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    bool match = i + word.size() <= text.size();
    for (size_t k = 0; match && k < word.size(); ++k) {
      match = Lower(text[i + k]) == Lower(word[k]);
    }
    const size_t end = i + word.size();
    if (match &&
        (i == 0 || !WordChar(text[i - 1]) || !WordChar(word.front())) &&
        (end == text.size() || !WordChar(text[end]) ||
         !WordChar(word.back()))) {
      out += "[redacted]";
      i = end;
      continue;
    }
    out.push_back(text[i++]);
  }
  return out;
}

TEST(AnonymiseTest, RedactWordFindsWhatAPlainScanFinds) {
  // Few distinct pieces, so that words recur, overlap, touch each other and
  // differ only in case; "é" is two bytes, both word characters.
  const std::vector<std::string> pieces = {"a", "A", "b",  "B", "an", "AN",
                                           " ", "-", "_",  "'", "1",  "é",
                                           ".", "@", "aa", "Ab"};
  std::mt19937 rng(20261205);
  auto pick = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    return s;
  };
  for (int round = 0; round < 100000; ++round) {
    const std::string word = pick(1 + rng() % 3);
    std::string text;
    for (size_t i = rng() % 12; i > 0; --i) {
      text += rng() % 3 == 0 ? word : pick(1 + rng() % 2);
    }
    std::string redacted = text;
    std::string lower;
    for (char c : text) lower.push_back(Lower(c));
    RedactWord(&redacted, &lower, word);
    ASSERT_EQ(redacted, PlainScan(text, word))
        << "text \"" << text << "\", word \"" << word << "\"";
    std::string lowered;
    for (char c : redacted) lowered.push_back(Lower(c));
    ASSERT_EQ(lower, lowered) << "the lowercased copy went stale";
  }
}

TEST(AnonymiseTest, NamesGoWholeThenWordByWordWithPlurals) {
  Identifiers ids;
  ids.names = {"Anne-Marie O'Brien", "QuinceyB_77"};
  EXPECT_EQ(RedactIdentifiers("ANNE-MARIE O'BRIEN met Marie and the "
                              "O'Briens at the Annexe; quinceyb posted",
                              ids),
            "[redacted] met [redacted] and the O'[redacted] at the Annexe; "
            "[redacted] posted");
  // A name inside a longer word is left alone.
  EXPECT_EQ(RedactIdentifiers("Mariella and Brienne", ids),
            "Mariella and Brienne");
}

// What the regex [A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,} replaces:
// leftmost, the domain as long as it can be while it ends in a dot and two
// or more letters, matches not overlapping.
TEST(AnonymiseTest, RedactEmailsReplacesWhatItsRegexWould) {
  EXPECT_EQ(RedactEmails("mail a.b+c@mail.example.org now"),
            "mail [redacted] now");
  EXPECT_EQ(RedactEmails("a@b.com.x@c.org"), "[redacted][redacted]");
  EXPECT_EQ(RedactEmails("x@y.c and @z.org and q@.io"),
            "x@y.c and @z.org and q@.io");
  EXPECT_EQ(RedactEmails("ann@host.co.uk2"), "[redacted]2");
  EXPECT_EQ(RedactEmails("(ann@host.org)."), "([redacted]).");
  EXPECT_EQ(RedactEmails("no address here"), "no address here");
  // A long run of letters before an "@" that begins no address.
  const std::string run(100000, 'e');
  EXPECT_EQ(RedactEmails(run + "@"), run + "@");
  EXPECT_EQ(RedactEmails(run + "@x.org"), "[redacted]");
}

TEST(AnonymiseTest, ScrubTakesOutContactsAndDatesAndNames) {
  Identifiers ids;
  ids.names = {"Zed Example"};
  EXPECT_EQ(Scrub("Zed rang 07700 900123 and wrote to zed@example.org on "
                  "3rd of March 2026, then on June 4.",
                  ids),
            "[redacted] rang [redacted] and wrote to [redacted] on "
            "[redacted], then on [redacted].");
  // Short numbers are not phone numbers.
  EXPECT_EQ(Scrub("Room 12 at 10:30", ids), "Room 12 at 10:30");
  EXPECT_EQ(Scrub("In 2024/25, 10:30-12:00 on Mondays", ids),
            "In 2024/25, 10:30-12:00 on Mondays");
}

TEST(AnonymiseTest, ScrubTakesOutAgesPostcodesNumericDatesAndInitials) {
  Identifiers ids;
  ids.names = {"Zed Example", "Kenji Watanabe-Ross"};
  EXPECT_EQ(Scrub("ZE, aged 34, and a 71-year-old met on 03/03/2025 at "
                  "EX4 9ZZ; K.W. (40 years old) on 2025-03-04 and KWR on "
                  "3.3.25.",
                  ids),
            "[redacted], [redacted], and a [redacted] met on [redacted] at "
            "[redacted]; [redacted] ([redacted]) on [redacted] and [redacted] "
            "on [redacted].");
  // Initials only in capitals: "ze" and "kw" are left.
  EXPECT_EQ(Scrub("ze kw", ids), "ze kw");
}

// Numbers before words that begin like a month are not dates: the month
// must be a month's name or abbreviation, capitalised ("3 May", "Sept 4")
// or in capitals.
TEST(AnonymiseTest, ScrubLeavesWordsThatOnlyBeginLikeAMonth) {
  const Identifiers none;
  for (const std::string harmless :
       {"3 decisions were made", "2 marches", "5 mayors", "4 junior staff",
        "12 augmented", "3 novel ideas", "6 octaves", "2 septic tanks",
        "7 Mayfield sessions", "10 aprons", "1 in 4 may need it",
        "in March 2025", "since 2019", "every 2 weeks"}) {
    EXPECT_EQ(Scrub(harmless, none), harmless);
  }
  for (const std::string date : {"3 May", "4 Sept", "12th of DECEMBER",
                                 "Jan 5th, 2026", "June 30", "2 Dec. 2025"}) {
    EXPECT_EQ(Scrub(date, none), "[redacted]") << date;
  }
}

TEST(AnonymiseTest, CollectsNamesDescriptionsAndContactsAnywhere) {
  const Json payload = {
      {"people_involved",
       {{{"person_ref", "person-1"},
         {"name", "Zed Example"},
         {"description", "posts as QuinceyB_77"},
         {"email", "zed@example.org"},
         {"phone", "07700 900123"},
         {"address", "1 Long Road, Townsville, ZZ1 1ZZ"}}}},
      {"organisation_name", "Harbour Trust"},
      {"description", "not a person's: no person_ref beside it"},
      {"witness", {{"preferred_name", "Kay"}}}};
  // From the document, and from simdjson's parse of its text (a fold's
  // way): the same.
  simdjson::dom::parser parser;
  const std::string text = payload.dump();
  for (bool parsed : {false, true}) {
    Identifiers ids;
    if (parsed) {
      CollectParsedIdentifiers(parser.parse(text).value(), &ids);
    } else {
      CollectIdentifiers(payload, &ids);
    }
    // A description gives what may be a handle, not its everyday words.
    EXPECT_EQ(ids.names,
              (std::set<std::string>{"Kay", "Zed Example", "QuinceyB_77"}));
    EXPECT_EQ(ids.exact, (std::set<std::string>{
                             "zed@example.org", "07700 900123",
                             "1 Long Road, Townsville, ZZ1 1ZZ", "1 Long Road",
                             "Long Road", "Townsville", "ZZ1 1ZZ"}));
  }
}

TEST(AnonymiseTest, ADescriptionGivesItsHandlesNotItsEverydayWords) {
  // Names (redacted word by word) and exact phrases (redacted whole).
  using Sets = std::pair<std::set<std::string>, std::set<std::string>>;
  const auto collect = [](const std::string& description) {
    Identifiers ids;
    CollectIdentifiers(Json{{"person_ref", "p1"}, {"description", description}},
                       &ids);
    return Sets{ids.names, ids.exact};
  };
  EXPECT_EQ(collect("Joined the session under the screen name 'PB'"),
            (Sets{{}, {"PB"}}));
  EXPECT_EQ(collect("screen name Kestrel_Nine"), (Sets{{"Kestrel_Nine"}, {}}));
  EXPECT_EQ(collect("Known at the allotment as Big Tam, posts as tam@home99"),
            (Sets{{"Big", "Tam", "tam@home99"}, {}}));
  EXPECT_EQ(collect("Tall, wears a red cap"), (Sets{{}, {}}));
  EXPECT_EQ(collect("goes by \"the captain\" online"),
            (Sets{{}, {"the captain"}}));
  Identifiers ids;
  CollectIdentifiers(Json{{"person_ref", "p1"},
                          {"description", "goes by \"the captain\" online"}},
                     &ids);
  EXPECT_EQ(Scrub("The captain said the session went well.", ids),
            "[redacted] said the session went well.");
}

// Random payloads: both ways collect the same identifiers; a key given
// twice is collected with both values from the parse (more to scrub).
TEST(AnonymiseTest, ParsedPayloadsGiveTheSameIdentifiers) {
  std::mt19937 rng(7);
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  const std::vector<std::string> keys = {
      "name",  "first_name", "organisation_name", "description",     "email",
      "phone", "address",    "person_ref",        "people_involved", "notes"};
  const std::vector<std::string> values = {
      "Ann Lee", "a@b.example",           "01632 960000", "2 High St, Oldtown",
      "x",       "  padded ,  parts , ab"};
  std::function<Json(int)> make = [&](int depth) -> Json {
    if (depth > 2 || pick(3) == 0) {
      return pick(4) == 0 ? Json(7) : Json(values[pick(values.size())]);
    }
    if (pick(3) == 0) {
      Json a = Json::array();
      for (size_t i = 0, n = pick(4); i < n; ++i) a.push_back(make(depth + 1));
      return a;
    }
    Json o = Json::object();
    for (size_t i = 0, n = pick(5); i < n; ++i) {
      o[keys[pick(keys.size())]] = make(depth + 1);
    }
    return o;
  };
  simdjson::dom::parser parser;
  for (int i = 0; i < 5000; ++i) {
    const Json payload = make(0);
    Identifiers a;
    Identifiers b;
    CollectIdentifiers(payload, &a);
    CollectParsedIdentifiers(parser.parse(payload.dump()).value(), &b);
    ASSERT_EQ(a.names, b.names) << payload.dump();
    ASSERT_EQ(a.exact, b.exact) << payload.dump();
  }
  Identifiers twice;
  CollectParsedIdentifiers(
      parser.parse(std::string(R"({"name":"One","name":"Two"})")).value(),
      &twice);
  EXPECT_EQ(twice.names, (std::set<std::string>{"One", "Two"}));
}

// A case's identifiers are stored as nlohmann wrote them before they were
// written directly: the same text for any sets (escapes, control
// characters, multi-byte characters, empty sets), and text that is not
// UTF-8 throws as dump() does.
TEST(AnonymiseTest, IdentifiersTextIsWhatNlohmannDumps) {
  std::mt19937 rng(11);
  const std::vector<std::string> parts = {
      "Ann",  "Lee", "\"quoted\"",  "back\\slash",  std::string("nul\0x", 5),
      "\x01", "\t",  "caf\xc3\xa9", "\xe2\x82\xac", "a@b.example",
      ""};
  auto pick = [&rng](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
  };
  for (int i = 0; i < 20000; ++i) {
    Identifiers ids;
    for (auto* set : {&ids.names, &ids.exact}) {
      for (size_t k = 0, n = pick(5); k < n; ++k) {
        std::string v;
        for (size_t w = 0, m = 1 + pick(3); w < m; ++w) {
          v += parts[pick(parts.size())];
        }
        set->insert(v);
      }
    }
    ASSERT_EQ(IdentifiersText(ids),
              Json({{"names", ids.names}, {"exact", ids.exact}}).dump());
  }
  Identifiers bad;
  bad.names.insert("\xff");
  EXPECT_THROW((void)IdentifiersText(bad), Json::type_error);
}

}  // namespace
}  // namespace caseledger::projections::internal

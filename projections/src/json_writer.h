// A JSON writer that writes what nlohmann's dump() would. Internal to
// projections.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace caseledger::projections::internal {

// Writes JSON text as nlohmann's dump() writes it (no indent, UTF-8 kept as
// it is, the same escapes), for documents written often enough that building
// a nlohmann document first costs: the caller writes an object's members in
// nlohmann's order (keys sorted). Text that is not UTF-8 throws what dump()
// throws.
class Writer {
 public:
  // A member name known when compiled, checked then to need no escape
  // (printable ASCII, neither '"' nor '\\'): written as one copy.
  class Name {
   public:
    template <size_t N>
    consteval Name(const char (&s)[N]) : text_(s), size_(N - 1) {
      for (size_t i = 0; i + 1 < N; ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
          throw "a member name that needs escaping: use KeyText";
        }
      }
    }
    std::string_view view() const { return {text_, size_}; }

   private:
    const char* text_;
    size_t size_;
  };

  Writer() = default;
  // With room for `bytes` at once (what is written grows by doubling, from
  // a few hundred bytes, otherwise).
  explicit Writer(size_t bytes) { out_.resize(bytes); }

  std::string Take() {
    out_.resize(len_);
    len_ = 0;
    return std::move(out_);
  }

  void Key(Name k) {
    Comma();
    const std::string_view v = k.view();
    char* p = Room(v.size() + 3);
    p[0] = '"';
    std::memcpy(p + 1, v.data(), v.size());
    p[v.size() + 1] = '"';
    p[v.size() + 2] = ':';
    len_ += v.size() + 3;
    first_ = true;  // the value follows without a comma
  }
  // A member name known only when run (escaped as it needs).
  void KeyText(std::string_view k) {
    String(k);
    Put(':');
    first_ = true;
  }
  void String(std::string_view s) {
    Comma();
    if (!Ascii(s) && !simdjson::validate_utf8(s.data(), s.size())) {
      (void)nlohmann::json(std::string(s)).dump();  // throws type_error 316
    }
    const size_t plain = Plain(s);
    // Most strings need no escape: written in one step.
    char* p = Room(plain + 2);
    *p = '"';
    if (plain != 0) std::memcpy(p + 1, s.data(), plain);
    len_ += plain + 1;
    // The rest, with runs that need no escape copied whole.
    size_t from = plain;
    for (size_t i = plain; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (!kEscaped[c]) continue;
      Put(s.substr(from, i - from));
      from = i + 1;
      switch (c) {
        case '"':
          Put("\\\"");
          break;
        case '\\':
          Put("\\\\");
          break;
        case '\b':
          Put("\\b");
          break;
        case '\f':
          Put("\\f");
          break;
        case '\n':
          Put("\\n");
          break;
        case '\r':
          Put("\\r");
          break;
        case '\t':
          Put("\\t");
          break;
        default: {
          char u[8];
          std::snprintf(u, sizeof(u), "\\u%04x", c);
          Put(std::string_view(u, 6));
        }
      }
    }
    Put(s.substr(from));
    Put('"');
    first_ = false;
  }
  void Number(uint64_t n) {
    Comma();
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof(digits), n).ptr;
    Put(std::string_view(digits, static_cast<size_t>(end - digits)));
    first_ = false;
  }
  void Bool(bool b) {
    Comma();
    Put(b ? std::string_view("true") : std::string_view("false"));
    first_ = false;
  }
  void Open(char c) {
    Comma();
    Put(c);
    first_ = true;
  }
  void Close(char c) {
    Put(c);
    first_ = false;
  }
  // A member: key and value.
  void Str(Name key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Flag(Name key, bool value) {
    Key(key);
    Bool(value);
  }
  void Num(Name key, uint64_t value) {
    Key(key);
    Number(value);
  }
  // Any value, as dump() writes it.
  void Dumped(const nlohmann::json& value) {
    Comma();
    Put(value.dump());
    first_ = false;
  }
  // An array from a collection (in its order), each element written by
  // `value`.
  template <typename Collection, typename Value>
  void Array(Name key, const Collection& items, Value value) {
    Key(key);
    Open('[');
    for (const auto& item : items) value(item);
    Close(']');
  }
  template <typename Collection>
  void Strings(Name key, const Collection& strings) {
    Key(key);
    StringArray(strings);
  }
  template <typename Collection>
  void StringArray(const Collection& strings) {
    Open('[');
    for (const auto& s : strings) String(s);
    Close(']');
  }
  // An object from a map (in its order, which is nlohmann's), each value
  // written by `value`.
  template <typename Map, typename Value>
  void Object(Name key, const Map& map, Value value) {
    Key(key);
    Open('{');
    for (const auto& [k, v] : map) {
      KeyText(k);
      value(v);
    }
    Close('}');
  }

 private:
  void Comma() {
    if (!first_) Put(',');
    first_ = false;
  }

  // Whether every byte is ASCII (so the text is UTF-8), eight at a time.
  static bool Ascii(std::string_view s) {
    uint64_t any = 0;
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      any |= w;
    }
    for (; i < s.size(); ++i) any |= static_cast<unsigned char>(s[i]);
    return (any & 0x8080808080808080ull) == 0;
  }
  // How many bytes of `s` from its start need no escape, eight at a time
  // (a byte below 0x20, '"' or '\\' needs one).
  static size_t Plain(std::string_view s) {
    constexpr uint64_t kOnes = 0x0101010101010101ull;
    constexpr uint64_t kHigh = 0x8080808080808080ull;
    auto zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      // (A byte with its top bit set is never below 0x20.)
      if ((((w - kOnes * 0x20) & ~w & kHigh) | zero_byte(w ^ (kOnes * '"')) |
           zero_byte(w ^ (kOnes * '\\'))) != 0) {
        break;
      }
    }
    while (i < s.size() && !kEscaped[static_cast<unsigned char>(s[i])]) ++i;
    return i;
  }
  // The bytes dump() escapes: control characters, '"' and '\\'.
  static constexpr auto kEscaped = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = true;
    t['"'] = true;
    t['\\'] = true;
    return t;
  }();

  // Room for `n` more bytes at the end of what is written (out_ is the
  // buffer, written up to len_; it grows by doubling).
  char* Room(size_t n) {
    if (len_ + n > out_.size()) {
      out_.resize(std::max<size_t>(2 * out_.size(), len_ + n + 256));
    }
    return out_.data() + len_;
  }
  void Put(char c) {
    *Room(1) = c;
    ++len_;
  }
  void Put(std::string_view s) {
    if (s.empty()) return;  // (its data may be null)
    std::memcpy(Room(s.size()), s.data(), s.size());
    len_ += s.size();
  }

  std::string out_;
  size_t len_ = 0;
  bool first_ = true;
};

// One member of an object (a feed record): a key (known when compiled, so
// written without an escape check) and its value.
struct Member {
  enum class Type { kString, kBool, kNumber, kStrings, kAny };
  Writer::Name key;
  Type type = Type::kString;
  std::string_view string;
  bool flag = false;
  uint64_t number = 0;
  const std::vector<std::string>* strings = nullptr;
  const nlohmann::json* any = nullptr;

  static Member Str(Writer::Name k, std::string_view v) {
    return {k, Type::kString, v};
  }
  static Member Flag(Writer::Name k, bool v) { return {k, Type::kBool, {}, v}; }
  static Member Num(Writer::Name k, uint64_t v) {
    return {k, Type::kNumber, {}, false, v};
  }
  static Member Strs(Writer::Name k, const std::vector<std::string>& v) {
    return {k, Type::kStrings, {}, false, 0, &v};
  }
  static Member Any(Writer::Name k, const nlohmann::json& v) {
    return {k, Type::kAny, {}, false, 0, nullptr, &v};
  }
};

// An object's text: what nlohmann's dump() writes for an object of these
// members (keys sorted, each once), written without building it. (The
// learning feed writes a record for a quarter of all events.)
inline std::string RecordText(std::vector<Member> members) {
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) {
              return a.key.view() < b.key.view();
            });
  Writer w;
  w.Open('{');
  for (const Member& m : members) {
    w.Key(m.key);
    switch (m.type) {
      case Member::Type::kString:
        w.String(m.string);
        break;
      case Member::Type::kBool:
        w.Bool(m.flag);
        break;
      case Member::Type::kNumber:
        w.Number(m.number);
        break;
      case Member::Type::kStrings:
        w.StringArray(*m.strings);
        break;
      case Member::Type::kAny:
        w.Dumped(*m.any);
        break;
    }
  }
  w.Close('}');
  return w.Take();
}

}  // namespace caseledger::projections::internal

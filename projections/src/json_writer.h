// A JSON writer that writes what nlohmann's dump() would. Internal to
// projections.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
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
  std::string Take() { return std::move(out_); }

  void Key(std::string_view k) {
    String(k);
    out_ += ':';
    first_ = true;  // the value follows without a comma
  }
  void String(std::string_view s) {
    Comma();
    if (!simdjson::validate_utf8(s.data(), s.size())) {
      (void)nlohmann::json(std::string(s)).dump();  // throws type_error 316
    }
    out_ += '"';
    size_t from = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + from, i - from);
      from = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default: {
          char u[8];
          std::snprintf(u, sizeof(u), "\\u%04x", c);
          out_ += u;
        }
      }
    }
    out_.append(s.data() + from, s.size() - from);
    out_ += '"';
    first_ = false;
  }
  void Number(uint64_t n) {
    Comma();
    out_ += std::to_string(n);
    first_ = false;
  }
  void Bool(bool b) {
    Comma();
    out_ += b ? "true" : "false";
    first_ = false;
  }
  void Open(char c) {
    Comma();
    out_ += c;
    first_ = true;
  }
  void Close(char c) {
    out_ += c;
    first_ = false;
  }
  // A member: key and value.
  void Str(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Flag(std::string_view key, bool value) {
    Key(key);
    Bool(value);
  }
  void Num(std::string_view key, uint64_t value) {
    Key(key);
    Number(value);
  }
  // Any value, as dump() writes it.
  void Any(std::string_view key, const nlohmann::json& value) {
    Key(key);
    Comma();
    out_ += value.dump();
    first_ = false;
  }
  template <typename Collection>
  void Strings(std::string_view key, const Collection& strings) {
    Key(key);
    Open('[');
    for (const auto& s : strings) String(s);
    Close(']');
  }
  // An object from a map (in its order, which is nlohmann's), each value
  // written by `value`.
  template <typename Map, typename Value>
  void Object(std::string_view key, const Map& map, Value value) {
    Key(key);
    Open('{');
    for (const auto& [k, v] : map) {
      Key(k);
      value(v);
    }
    Close('}');
  }

 private:
  void Comma() {
    if (!first_) out_ += ',';
    first_ = false;
  }

  std::string out_;
  bool first_ = true;
};

// One member of an object (a feed record): a key and its value.
struct Member {
  enum class Type { kString, kBool, kNumber, kStrings, kAny };
  std::string_view key;
  Type type = Type::kString;
  std::string_view string;
  bool flag = false;
  uint64_t number = 0;
  const std::vector<std::string>* strings = nullptr;
  const nlohmann::json* any = nullptr;

  static Member Str(std::string_view k, std::string_view v) {
    return {k, Type::kString, v};
  }
  static Member Flag(std::string_view k, bool v) {
    return {k, Type::kBool, {}, v};
  }
  static Member Num(std::string_view k, uint64_t v) {
    return {k, Type::kNumber, {}, false, v};
  }
  static Member Strs(std::string_view k, const std::vector<std::string>& v) {
    return {k, Type::kStrings, {}, false, 0, &v};
  }
  static Member Any(std::string_view k, const nlohmann::json& v) {
    return {k, Type::kAny, {}, false, 0, nullptr, &v};
  }
};

// An object's text: what nlohmann's dump() writes for an object of these
// members (keys sorted, each once), written without building it. (The
// learning feed writes a record for a quarter of all events.)
inline std::string RecordText(std::vector<Member> members) {
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.key < b.key; });
  Writer w;
  w.Open('{');
  for (const Member& m : members) {
    switch (m.type) {
      case Member::Type::kString:
        w.Str(m.key, m.string);
        break;
      case Member::Type::kBool:
        w.Flag(m.key, m.flag);
        break;
      case Member::Type::kNumber:
        w.Num(m.key, m.number);
        break;
      case Member::Type::kStrings:
        w.Strings(m.key, *m.strings);
        break;
      case Member::Type::kAny:
        w.Any(m.key, *m.any);
        break;
    }
  }
  w.Close('}');
  return w.Take();
}

}  // namespace caseledger::projections::internal

#include <simdjson.h>

#include <cmath>
#include <string>

#include "caseledger/service/case_service.h"

namespace caseledger::service {
namespace {

using Json = nlohmann::json;

// Builds `*out` from `e` as nlohmann's parser would have built it from the
// same text; false if it might not (the caller falls back to nlohmann).
bool Build(simdjson::dom::element e, Json* out) {
  using Type = simdjson::dom::element_type;
  switch (e.type()) {
    case Type::OBJECT: {
      *out = Json::object();
      for (auto [key, value] : e.get_object()) {
        // A repeated key keeps its last value, as nlohmann's parser does.
        if (!Build(value, &(*out)[std::string(key)])) return false;
      }
      return true;
    }
    case Type::ARRAY: {
      *out = Json::array();
      for (simdjson::dom::element value : e.get_array()) {
        out->push_back(nullptr);
        if (!Build(value, &out->back())) return false;
      }
      return true;
    }
    case Type::STRING:
      *out = std::string(e.get_string().value_unsafe());
      return true;
    case Type::INT64: {
      // nlohmann reads a non-negative integer as unsigned.
      const int64_t i = e.get_int64().value_unsafe();
      if (i >= 0) {
        *out = static_cast<uint64_t>(i);
      } else {
        *out = i;
      }
      return true;
    }
    case Type::UINT64:
      *out = e.get_uint64().value_unsafe();
      return true;
    case Type::DOUBLE: {
      const double d = e.get_double().value_unsafe();
      // A negative zero: "-0.0" to nlohmann too, but make sure.
      if (d == 0 && std::signbit(d)) return false;
      *out = d;
      return true;
    }
    case Type::BOOL:
      *out = e.get_bool().value_unsafe();
      return true;
    case Type::NULL_VALUE:
      *out = nullptr;
      return true;
  }
  return false;
}

// Whether `text` may hold the number -0 (an integer 0 to nlohmann, but
// signed, and read as plain 0 by simdjson): a "-0" where a value starts,
// after a ':', ',' or '[' (and blanks) or at the very start. Inside a
// string this may be a false alarm (which costs only speed); a date's
// "-0" follows a digit.
bool MayHoldMinusZero(std::string_view text) {
  for (size_t p = text.find("-0"); p != std::string_view::npos;
       p = text.find("-0", p + 1)) {
    size_t q = p;
    while (q > 0 && (text[q - 1] == ' ' || text[q - 1] == '\t' ||
                     text[q - 1] == '\n' || text[q - 1] == '\r')) {
      --q;
    }
    if (q == 0 || text[q - 1] == ':' || text[q - 1] == ',' ||
        text[q - 1] == '[') {
      return true;
    }
  }
  return false;
}

}  // namespace

Json ParseStoredJson(std::string_view text) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  Json out;
  if (!MayHoldMinusZero(text) &&
      parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS &&
      Build(root, &out)) {
    return out;
  }
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace caseledger::service

// JSON documents compared strictly, for tests and fuzz targets.
#pragma once

#include <nlohmann/json.hpp>

namespace caseledger::testing {

// Equal, with every value of the same JSON type (nlohmann's == says 1u and
// 1 are equal; a fold reading get<int64_t>() may not) and members in the
// same order.
inline bool SameJson(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
      if (ia.key() != ib.key() || !SameJson(*ia, *ib)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameJson(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_number_float()) {
    return a.dump() == b.dump();  // -0.0 and 0.0 compare equal otherwise
  }
  return a == b;
}

}  // namespace caseledger::testing

// ParseStoredJson's contract (service/case_service.h): the document
// nlohmann::json::parse(text, nullptr, false) makes, value types included,
// for any text. A differential check: both parsers on the same bytes.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "caseledger/service/case_service.h"
#include "tests/support/json_same.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (64u << 10)) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json ours = caseledger::service::ParseStoredJson(text);
  nlohmann::json theirs = nlohmann::json::parse(text, nullptr, false);
  if (ours.is_discarded() != theirs.is_discarded()) __builtin_trap();
  if (!ours.is_discarded() && !caseledger::testing::SameJson(ours, theirs))
    __builtin_trap();
  return 0;
}

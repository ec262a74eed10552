// Upcasters: any stored payload of an older version either upcasts or is
// refused with a Status; never a throw. A payload valid at its version
// upcasts to one valid at the current version.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "caseledger/domain/catalog.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto catalog = *caseledger::domain::EventCatalog::Load();
  if (size > (64u << 10)) return 0;
  nlohmann::json payload = nlohmann::json::parse(data, data + size, nullptr,
                                                 /*allow_exceptions=*/false);
  if (payload.is_discarded()) return 0;
  const bool valid = catalog->Validate("RiskAssessed", 1, payload).ok();
  auto up = catalog->Upcast("RiskAssessed", 1, payload);
  if (valid) {
    if (!up.ok()) __builtin_trap();
    const uint32_t current = catalog->CurrentVersion("RiskAssessed");
    if (!catalog->Validate("RiskAssessed", current, *up).ok()) {
      __builtin_trap();
    }
  }
  return 0;
}

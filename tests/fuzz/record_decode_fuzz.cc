// Stored records as the engine decodes them (engine/FORMAT.md): any bytes
// under a log key, however damaged, are a Corruption status, never a crash
// or a read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "engine/src/record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  caseledger::internal::EventView view;
  if (caseledger::internal::DecodeRecord(value, &view).ok()) {
    // Whatever decodes is whole: every field can be read and copied.
    caseledger::RecordedEvent e = caseledger::internal::ToRecordedEvent(view);
    if (e.payload.size() > size) __builtin_trap();
  }
  return 0;
}

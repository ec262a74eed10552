#include "projections/src/anonymise.h"

#include "projections/src/json_writer.h"

namespace caseledger::projections::internal {

std::string IdentifiersText(const Identifiers& ids) {
  Writer w;  // members in nlohmann's (sorted) order
  w.Open('{');
  w.Strings("exact", ids.exact);
  w.Strings("names", ids.names);
  if (!ids.sealed.empty()) {
    w.Str("sealed_case", ids.sealed_case);
    w.Strings("sealed", ids.sealed);
  }
  w.Close('}');
  return w.Take();
}

}  // namespace caseledger::projections::internal

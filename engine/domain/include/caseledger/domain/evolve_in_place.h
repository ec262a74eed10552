// Evolve() for the read models' fold: in place, with the payload as
// simdjson parsed its stored text. Kept apart from case.h so that the pure
// domain's face does not name the parser.
#pragma once

#include "caseledger/domain/case.h"

namespace simdjson::dom {
class element;
}  // namespace simdjson::dom

namespace caseledger::domain {

// `state` becomes what Evolve(state, event) returns with the payload's
// text (at the current schema version) parsed into event.payload.
void EvolveInPlace(CaseState& state, const EventHeader& event,
                   const simdjson::dom::element& payload);

}  // namespace caseledger::domain

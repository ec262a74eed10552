// The projections' view of the learning text scrubber, which is the
// service's (caseledger/service/anonymise.h): the learning feed scrubs
// shared learning again when it is read, with the identifiers it keeps per
// case, stored as IdentifiersText writes them.
#pragma once

#include <string>

#include "caseledger/service/anonymise.h"

namespace caseledger::projections::internal {

using service::CollectIdentifiers;
using service::CollectParsedIdentifiers;
using service::Identifiers;
using service::RedactEmails;
using service::RedactIdentifiers;
using service::RedactWord;
using service::Scrub;

// How a case's identifiers are stored: as nlohmann's dump() of
// {"exact": [...], "names": [...]} (and, with sealed ones,
// "sealed_case": ..., "sealed": [...]) writes it, without building a
// document.
// Throws what dump() throws for text that is not UTF-8.
std::string IdentifiersText(const Identifiers& ids);

}  // namespace caseledger::projections::internal

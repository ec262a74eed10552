// Operations on a data directory that the server and the command line
// share: where the read models live, the learning feed's pseudonym key, and
// backups.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "caseledger/event_store.h"

namespace caseledger::service {

// The read models live beside the log, in their own RocksDB:
// <data>/projections.
std::string ProjectionsDir(const std::string& data);

// The key under which cases appear in the learning feed: from
// CASELEDGER_PSEUDONYM_KEY, else from `key_file` if given (it must exist and
// hold a key of at least 16 characters), else from <data>/pseudonym.key,
// created with 32 random bytes (mode 0600) on first use. It is
// configuration, never an event: the hash-chained log (and every projection
// of it) must not carry it.
StatusOr<std::string> LoadPseudonymKey(const std::string& data,
                                       const std::string& key_file = "");

// A backup of the store at `data` into a new directory under `root`, named
// by the time and the position it ends at: the engine's consistent copy,
// plus the pseudonym key file when the key comes from one (so a restored
// store gives the learning feed the same pseudonyms). A key given in
// CASELEDGER_PSEUDONYM_KEY is configuration kept elsewhere, not copied.
// Returns {"backup": dir, "position": N, "pseudonym_key_copied": bool}.
StatusOr<nlohmann::json> BackUp(EventStore& store, const std::string& data,
                                const std::string& key_file,
                                const std::string& root);

// Where backups go: `configured`, else <data>-backups.
std::string BackupRoot(const std::string& data, const std::string& configured);

}  // namespace caseledger::service

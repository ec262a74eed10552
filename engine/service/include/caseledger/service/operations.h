// Operations on a data directory that the server and the command line
// share: where the read models live, the learning feed's pseudonym key, the
// data keys, and backups.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/keys/keys.h"
#include "caseledger/keys/sealer.h"
#include "caseledger/service/case_service.h"

namespace spdlog {
class logger;
}

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

// Where the data keys are: the key store <data>/keys, and its destroyed
// list (by default <data>/keys.destroyed; an operator may keep it on
// another volume).
std::string KeysDir(const std::string& data);

// Where the key-encryption key comes from (keys::LoadKek): `kek_file`, else
// a systemd credential, else CASELEDGER_KEK. `dev_kek` instead uses (and
// makes, on first use) <data>/DEV-ONLY-kek, beside the data it protects:
// for development only, and said loudly in the log at every start.
struct KeyConfig {
  std::string kek_file;
  bool dev_kek = false;
  std::string destroyed_list;  // empty: <data>/keys.destroyed
  bool read_only = false;
};

// The key store of a data directory and a sealer over it.
struct DataKeys {
  std::unique_ptr<keys::KeyStore> store;
  std::unique_ptr<keys::Sealer> sealer;
};

// Opens (creating) <data>/keys with the configured KEK. kNotFound, saying
// how to give one, when no KEK is configured.
StatusOr<DataKeys> OpenDataKeys(
    const std::string& data, const KeyConfig& config,
    std::shared_ptr<const domain::EventCatalog> catalog,
    const std::shared_ptr<spdlog::logger>& logger);

// A backup of the store at `data` into a new directory under `root`, named
// by the time and the position it ends at: the engine's consistent copy,
// plus the pseudonym key file when the key comes from one (so a restored
// store gives the learning feed the same pseudonyms). A key given in
// CASELEDGER_PSEUDONYM_KEY is configuration kept elsewhere, not copied.
// The data keys go with it, wrapped (in <backup>/keys, copied after the
// log, so every key an event in the backup needs is there); the destroyed
// list does not: it stays outside backups, and restoring applies it.
// Returns {"backup": dir, "position": N, "pseudonym_key_copied": bool}.
StatusOr<nlohmann::json> BackUp(EventStore& store, keys::KeyStore& keys,
                                const std::string& data,
                                const std::string& key_file,
                                const std::string& root);

// After the log of `backup` was restored into `data` (RestoreBackup): its
// data keys copied into <data>/keys, then every destroyed list in `lists`
// (those the old store kept, outside the backup) merged into the new
// store's and applied, so that nothing erased after the backup was made
// comes back. Returns how many entries the new store's list holds.
StatusOr<size_t> RestoreKeys(
    const std::string& backup, const std::string& data,
    const std::vector<std::string>& lists, const KeyConfig& config,
    std::shared_ptr<const domain::EventCatalog> catalog,
    const std::shared_ptr<spdlog::logger>& logger);

// The data key a PersonalDataErased payload destroys: "*" (every key of the
// case) for scope "case", else the person's (keys::Scope::Person).
std::string ErasedKeyScope(const nlohmann::json& payload);
// For a PersonalDataErased record, the scope its keys go by (as
// ErasedKeyScope); nullopt for any other record (what replication's
// KeyReplication::erased_scope asks).
std::optional<std::string> ErasedKeyScopeOf(const RecordedEvent& e);

// Carries out the erasures planned in `keys` (KeyStore::PlanErasure) whose
// event reached the log, and forgets those whose event did not: run after
// a crash, before anything reads personal data. Returns how many were
// carried out.
StatusOr<size_t> FinishPlannedErasures(const EventStore& store,
                                       keys::KeyStore& keys,
                                       spdlog::logger* logger = nullptr);

// The actor the retention sweep acts as.
inline const domain::Actor& RetentionActor() {
  static const domain::Actor kActor{"system:retention", domain::Role::kAdmin};
  return kActor;
}

// The retention sweep over `due` (case id, rule name), as the read models
// list them (ReadModels::RetentionDue): apply-retention on each, as
// RetentionActor(). The domain decides each again on the case's own log
// (a case put on hold or reopened since is refused and left alone), so a
// lagging list erases nothing it should not. With `dry_run`, writes
// nothing. Returns {"dry_run": b, "due": N, "erased": N, "refused": N,
// "cases": [{"case_id", "rule", "outcome": "erased" | "due" | "refused",
// "reason"?}]}; an error only if the store failed. `stop`, if given, is
// asked before each case: once it says true, the rest are left for the
// next sweep (and not listed).
StatusOr<nlohmann::json> SweepRetention(
    CaseService& service,
    const std::vector<std::pair<std::string, std::string>>& due, bool dry_run,
    const std::function<bool()>& stop = nullptr);

// Where backups go: `configured`, else <data>-backups.
std::string BackupRoot(const std::string& data, const std::string& configured);

}  // namespace caseledger::service

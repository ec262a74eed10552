// For tests only: the key store opened on a RocksDB Env of the caller's (a
// power cut, a full disk). Internal: not part of engine/keys' public face.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "caseledger/keys/keys.h"

namespace rocksdb {
class Env;
}

namespace caseledger::keys::internal {

// KeyStore::Open, with the key store's database on `env` (which must
// outlive the store). The destroyed list is an ordinary file, not on `env`.
Status OpenWithEnv(const KeyStoreOptions& options, const std::string& dir,
                   rocksdb::Env* env, std::shared_ptr<const Kek> kek,
                   const std::vector<std::shared_ptr<const Kek>>& older,
                   std::unique_ptr<KeyStore>* store);

}  // namespace caseledger::keys::internal

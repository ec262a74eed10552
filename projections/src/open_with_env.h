// For tests: the read models on a RocksDB Env of the test's choosing (one
// that injects storage faults or cuts the power). Internal to projections.
#pragma once

#include <memory>
#include <string>

#include "caseledger/projections/read_models.h"

namespace rocksdb {
class Env;
}

namespace caseledger::projections::internal {

// ReadModels::Open, with every file of the models' RocksDB (and of the
// tables a rebuild writes) going through `env`, which must outlive them.
StatusOr<std::unique_ptr<ReadModels>> OpenWithEnv(
    const std::string& dir, const EventStore& store,
    std::shared_ptr<const domain::EventCatalog> catalog,
    std::shared_ptr<spdlog::logger> logger, std::string pseudonym_key,
    rocksdb::Env* env);

}  // namespace caseledger::projections::internal

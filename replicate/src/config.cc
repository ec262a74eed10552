#include <algorithm>
#include <cctype>

#include "caseledger/replicate/replication.h"

namespace caseledger::replicate {
namespace {

bool IsName(const std::string& s, size_t max) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '_' || c == '-';
         });
}

}  // namespace

Status CheckConfig(const ReplicationConfig& config) {
  if (config.servers.empty()) {
    return Status::InvalidArgument(
        "replication needs at least one NATS server");
  }
  for (const std::string& s : config.servers) {
    if (s.rfind("nats://", 0) != 0 && s.rfind("tls://", 0) != 0) {
      return Status::InvalidArgument("NATS server " + s +
                                     " is not a nats:// or tls:// URL");
    }
  }
  if (!IsName(config.node, 64)) {
    return Status::InvalidArgument(
        "the node name must be 1 to 64 characters from [A-Za-z0-9_-]");
  }
  if (!IsName(config.stream, 64)) {
    return Status::InvalidArgument(
        "the stream name must be 1 to 64 characters from [A-Za-z0-9_-]");
  }
  if (!IsName(config.subjects, 64)) {
    return Status::InvalidArgument(
        "the subject prefix must be 1 to 64 characters from [A-Za-z0-9_-]");
  }
  if (config.replicas != 1 && config.replicas != 3 && config.replicas != 5) {
    return Status::InvalidArgument("replicas must be 1, 3 or 5");
  }
  if (config.timeout < std::chrono::milliseconds(100) ||
      config.timeout > std::chrono::minutes(1)) {
    return Status::InvalidArgument(
        "the replication timeout must be between 100 ms and 1 minute");
  }
  if (!config.checkpoint_public_key.empty() &&
      (config.checkpoint_public_key.size() != 64 ||
       !std::all_of(config.checkpoint_public_key.begin(),
                    config.checkpoint_public_key.end(),
                    [](unsigned char c) { return std::isxdigit(c) != 0; }))) {
    return Status::InvalidArgument(
        "the checkpoint public key must be 64 hexadecimal digits (what "
        "`caseledger keys new-signing-key` printed)");
  }
  if (config.checkpoint_interval < std::chrono::milliseconds(100)) {
    return Status::InvalidArgument(
        "the checkpoint interval must be at least 100 ms");
  }
  return Status::OK();
}

}  // namespace caseledger::replicate

#include "caseledger/service/operations.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace caseledger::service {

std::string ProjectionsDir(const std::string& data) {
  return data + "/projections";
}

StatusOr<std::string> LoadPseudonymKey(const std::string& data,
                                       const std::string& key_file) {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment.
  if (const char* env = std::getenv("CASELEDGER_PSEUDONYM_KEY")) {
    if (std::string(env).size() < 16) {
      return Status::InvalidArgument(
          "CASELEDGER_PSEUDONYM_KEY must be at least 16 characters");
    }
    return std::string(env);
  }
  std::string key;
  if (!key_file.empty()) {
    std::ifstream configured(key_file);
    if (!configured || !std::getline(configured, key) || key.size() < 16) {
      return Status::InvalidArgument(
          "pseudonym_key_file " + key_file +
          " must exist and hold a key of at least 16 characters");
    }
    return key;
  }
  const std::string path = data + "/pseudonym.key";
  std::ifstream in(path);
  if (in && std::getline(in, key) && key.size() >= 16) return key;
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return Status::IOError("no random bytes for the pseudonym key");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  key.clear();
  for (unsigned char c : raw) {
    key.push_back(kHex[c >> 4]);
    key.push_back(kHex[c & 0xF]);
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return Status::IOError("cannot create " + path);
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) ==
                static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::IOError("cannot write " + path);
  return key;
}

std::string KeysDir(const std::string& data) { return data + "/keys"; }

StatusOr<DataKeys> OpenDataKeys(
    const std::string& data, const KeyConfig& config,
    std::shared_ptr<const domain::EventCatalog> catalog,
    const std::shared_ptr<spdlog::logger>& logger) {
  std::shared_ptr<const keys::Kek> kek;
  if (config.dev_kek) {
    const std::string path = data + "/DEV-ONLY-kek";
    std::error_code ec;
    std::filesystem::create_directories(data, ec);
    auto made = std::filesystem::exists(path, ec) ? keys::Kek::ReadFile(path)
                                                  : keys::Kek::CreateFile(path);
    if (!made.ok()) return made.status();
    kek = *made;
    if (logger) {
      logger->warn(
          "DEVELOPMENT KEY: the key-encryption key is {}, inside the data "
          "directory: anyone who copies the directory can read every case. "
          "Never use --dev-kek with real people's data.",
          path);
    }
  } else {
    auto loaded = keys::LoadKek(config.kek_file);
    if (!loaded.ok()) return loaded.status();
    kek = *loaded;
  }
  if (!config.read_only) {
    std::error_code ec;
    std::filesystem::create_directories(data, ec);
    if (ec)
      return Status::IOError("cannot create " + data + ": " + ec.message());
  }
  keys::KeyStoreOptions o;
  o.read_only = config.read_only;
  o.create_if_missing = !config.read_only;
  o.destroyed_list = config.destroyed_list;
  o.logger = logger;
  DataKeys out;
  RETURN_IF_ERROR(keys::KeyStore::Open(o, KeysDir(data), kek, {}, &out.store));
  out.sealer =
      std::make_unique<keys::Sealer>(std::move(catalog), out.store.get());
  return out;
}

StatusOr<size_t> RestoreKeys(
    const std::string& backup, const std::string& data,
    const std::vector<std::string>& lists, const KeyConfig& config,
    std::shared_ptr<const domain::EventCatalog> catalog,
    const std::shared_ptr<spdlog::logger>& logger) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string from = KeysDir(backup);
  if (!fs::is_directory(from, ec)) {
    return Status::NotFound("the backup " + backup + " holds no data keys");
  }
  // RestoreBackup copies the whole backup, keys included (synced); a
  // restore made otherwise gets them here.
  if (!fs::exists(KeysDir(data), ec)) {
    fs::copy(from, KeysDir(data), fs::copy_options::recursive, ec);
    if (ec) {
      return Status::IOError("copying the data keys into " + data + ": " +
                             ec.message());
    }
  }
  const std::string own = config.destroyed_list.empty()
                              ? KeysDir(data) + ".destroyed"
                              : config.destroyed_list;
  // Every entry of the old lists, in the new store's (appended, synced).
  std::string merged;
  for (const std::string& list : lists) {
    if (list == own) continue;
    std::ifstream in(list, std::ios::binary);
    if (!in) {
      return Status::NotFound("destroyed list " + list + " cannot be read");
    }
    merged.append((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
    if (!merged.empty() && merged.back() != '\n') merged.push_back('\n');
  }
  if (!merged.empty()) {
    const int fd = ::open(own.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0) return Status::IOError("cannot open " + own);
    const bool ok = ::write(fd, merged.data(), merged.size()) ==
                        static_cast<ssize_t>(merged.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Status::IOError("cannot write " + own);
  }
  // Opening applies the list: what it names is destroyed in the copy.
  KeyConfig c = config;
  c.destroyed_list = own;
  ASSIGN_OR_RETURN(DataKeys keys,
                   OpenDataKeys(data, c, std::move(catalog), logger));
  ASSIGN_OR_RETURN(std::vector<keys::Destroyed> list,
                   keys.store->DestroyedKeys());
  return list.size();
}

StatusOr<nlohmann::json> BackUp(EventStore& store, keys::KeyStore& keys,
                                const std::string& data,
                                const std::string& key_file,
                                const std::string& root) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Status::IOError("cannot create " + root + ": " + ec.message());
  const std::string stamp = FormatTimestamp(NowUtc());
  std::string name = "caseledger-";
  for (char c : stamp.substr(0, 19)) {  // YYYY-MM-DDTHH:MM:SS
    if (c != '-' && c != ':') name.push_back(c);
  }
  name += "Z-p" + std::to_string(store.committed_position().value());
  const std::string dir = root + "/" + name;
  ASSIGN_OR_RETURN(GlobalPosition position, store.Backup(dir));
  // After the log: a key made since is there too, never one missing.
  RETURN_IF_ERROR(keys.Backup(KeysDir(dir)));
  nlohmann::json out = {{"backup", dir}, {"position", position.value()}};
  std::string key_path = key_file;
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment.
  if (key_path.empty() && !std::getenv("CASELEDGER_PSEUDONYM_KEY")) {
    key_path = data + "/pseudonym.key";
  }
  out["pseudonym_key_copied"] = false;
  if (!key_path.empty() && fs::exists(key_path, ec)) {
    const std::string to = dir + "/pseudonym.key";
    fs::copy_file(key_path, to, ec);
    if (!ec) {
      fs::permissions(to, fs::perms::owner_read | fs::perms::owner_write,
                      fs::perm_options::replace, ec);
    }
    if (ec) {
      return Status::IOError("backup " + dir + " is made, but the pseudonym " +
                             "key could not be copied: " + ec.message());
    }
    out["pseudonym_key_copied"] = true;
  }
  return out;
}

std::string BackupRoot(const std::string& data, const std::string& configured) {
  if (!configured.empty()) return configured;
  std::string d = data;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + "-backups";
}

}  // namespace caseledger::service

namespace caseledger::service {

std::string ErasedKeyScope(const nlohmann::json& payload) {
  if (payload.value("scope", "") == "case") return "*";
  return keys::Scope::Person(payload.value("person_ref", ""));
}

std::optional<std::string> ErasedKeyScopeOf(const RecordedEvent& e) {
  if (e.type != "PersonalDataErased") return std::nullopt;
  auto payload = nlohmann::json::parse(e.payload, nullptr, false);
  if (!payload.is_object()) return std::nullopt;
  return ErasedKeyScope(payload);
}

StatusOr<size_t> FinishPlannedErasures(const EventStore& store,
                                       keys::KeyStore& keys,
                                       spdlog::logger* logger) {
  ASSIGN_OR_RETURN(std::vector<keys::KeyStore::PlannedErasure> plans,
                   keys.PlannedErasures());
  size_t done = 0;
  for (const keys::KeyStore::PlannedErasure& plan : plans) {
    auto id = EventId::Parse(plan.event_id);
    StatusOr<RecordedEvent> e =
        id.ok() ? store.ReadEvent(*id) : StatusOr<RecordedEvent>(id.status());
    if (e.ok() && e->stream_id == plan.case_id &&
        e->type == "PersonalDataErased") {
      RETURN_IF_ERROR(keys.Destroy(plan.case_id, plan.scope, plan.event_id));
      ++done;
      if (logger) {
        logger->warn(
            "finished erasure {} of case {} ({}): its keys were not yet "
            "destroyed when the process last stopped",
            plan.event_id, plan.case_id, plan.scope);
      }
    } else if (!e.ok() && !e.status().IsNotFound() &&
               !e.status().IsInvalidArgument()) {
      return e.status();
    }
    // Done, or its event never reached the log: nothing more to do.
    RETURN_IF_ERROR(keys.DropPlannedErasure(plan));
  }
  return done;
}

StatusOr<nlohmann::json> SweepRetention(
    CaseService& service,
    const std::vector<std::pair<std::string, std::string>>& due, bool dry_run,
    const std::function<bool()>& stop) {
  nlohmann::json cases = nlohmann::json::array();
  size_t erased = 0, refused = 0;
  for (const auto& [case_id, rule] : due) {
    if (stop && stop()) break;
    nlohmann::json item = {{"case_id", case_id}, {"rule", rule}};
    if (dry_run) {
      item["outcome"] = "due";
      cases.push_back(std::move(item));
      continue;
    }
    // (Run twice, the second is refused: the case is erased already.)
    CommandOptions options;
    options.causation_id = "retention:" + rule;
    auto r =
        service.Execute(case_id, "apply-retention", {{"retention_rule", rule}},
                        RetentionActor(), options);
    if (r.ok()) {
      item["outcome"] = "erased";
      ++erased;
    } else if (r.status().IsFailedPrecondition() ||
               r.status().IsInvalidArgument() ||
               r.status().IsPermissionDenied() || r.status().IsAborted()) {
      item["outcome"] = "refused";
      item["reason"] = r.status().message();
      ++refused;
    } else {
      return r.status();
    }
    cases.push_back(std::move(item));
  }
  return nlohmann::json{{"dry_run", dry_run},
                        {"due", due.size()},
                        {"erased", erased},
                        {"refused", refused},
                        {"cases", std::move(cases)}};
}

}  // namespace caseledger::service

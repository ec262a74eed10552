#include "caseledger/service/operations.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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

StatusOr<nlohmann::json> BackUp(EventStore& store, const std::string& data,
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

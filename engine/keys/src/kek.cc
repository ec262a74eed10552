#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

#include "caseledger/keys/keys.h"
#include "engine/keys/src/aead.h"

namespace caseledger::keys {

SecretKey::~SecretKey() { OPENSSL_cleanse(bytes_, sizeof(bytes_)); }

namespace {

// errno's text (std::strerror is not thread-safe; this is).
std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Hex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

}  // namespace

std::shared_ptr<const Kek> Kek::FromBytes(const uint8_t* bytes) {
  std::shared_ptr<Kek> kek(new Kek());
  std::memcpy(kek->key_.data(), bytes, kKeyBytes);
  const std::string label = "caseledger kek id\n";
  std::string input = label;
  input.append(reinterpret_cast<const char*>(bytes), kKeyBytes);
  kek->id_ = Sha256Hex(input).substr(0, 16);
  OPENSSL_cleanse(input.data(), input.size());
  return kek;
}

namespace {

// 64 hexadecimal digits (and an optional line end) as 32 bytes into `out`.
Status ParseSecret(std::string_view text, std::string_view source,
                   std::string_view what, SecretKey* out) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  const std::string wrong = std::string(source) + ": a " + std::string(what) +
                            " is 64 hexadecimal digits";
  if (text.size() != 2 * kKeyBytes) return Status::InvalidArgument(wrong);
  for (size_t i = 0; i < kKeyBytes; ++i) {
    const int hi = HexDigit(text[2 * i]);
    const int lo = HexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(out->data(), kKeyBytes);
      return Status::InvalidArgument(wrong);
    }
    out->data()[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return Status::OK();
}

}  // namespace

StatusOr<std::shared_ptr<const Kek>> Kek::FromText(std::string_view text,
                                                   std::string_view source) {
  SecretKey key;
  RETURN_IF_ERROR(ParseSecret(text, source, "KEK", &key));
  return FromBytes(key.data());
}

StatusOr<std::unique_ptr<SecretKey>> ReadSecretFile(const std::string& path,
                                                    std::string_view what) {
  const std::string name = std::string(what) + " file " + path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::NotFound(name + ": " + ErrnoText(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::PermissionDenied(name + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied(
        name + " has mode " + mode +
        ": others or its group may read or change it (chmod 600 it)");
  }
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n < 0) return Status::IOError(name + ": " + ErrnoText(errno));
  auto key = std::make_unique<SecretKey>();
  Status parsed = ParseSecret(std::string_view(buf, static_cast<size_t>(n)),
                              name, what, key.get());
  OPENSSL_cleanse(buf, sizeof(buf));
  RETURN_IF_ERROR(parsed);
  return key;
}

StatusOr<std::unique_ptr<SecretKey>> CreateSecretFile(const std::string& path,
                                                      std::string_view what) {
  const std::string name = std::string(what) + " file " + path;
  auto key = std::make_unique<SecretKey>();
  internal::RandomBytes(key->data(), kKeyBytes);
  std::string text = Hex(key->data(), kKeyBytes) + "\n";
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
             S_IRUSR | S_IWUSR);
  if (fd < 0) {
    const int err = errno;
    OPENSSL_cleanse(text.data(), text.size());
    if (err == EEXIST) {
      return Status::AlreadyExists(name + " exists; it is never overwritten");
    }
    return Status::IOError(name + ": " + ErrnoText(err));
  }
  const bool ok = ::fchmod(fd, S_IRUSR | S_IWUSR) == 0 &&
                  ::write(fd, text.data(), text.size()) ==
                      static_cast<ssize_t>(text.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  OPENSSL_cleanse(text.data(), text.size());
  if (!ok) {
    ::unlink(path.c_str());
    return Status::IOError("writing " + name + ": " + ErrnoText(err));
  }
  return key;
}

StatusOr<std::shared_ptr<const Kek>> Kek::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SecretKey> key, ReadSecretFile(path, "KEK"));
  return FromBytes(key->data());
}

StatusOr<std::shared_ptr<const Kek>> Kek::CreateFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<SecretKey> key,
                   CreateSecretFile(path, "KEK"));
  return FromBytes(key->data());
}

std::shared_ptr<const Kek> Kek::Generate() {
  uint8_t bytes[kKeyBytes];
  internal::RandomBytes(bytes, sizeof(bytes));
  auto kek = FromBytes(bytes);
  OPENSSL_cleanse(bytes, sizeof(bytes));
  return kek;
}

StatusOr<std::shared_ptr<const Kek>> LoadKek(const std::string& file) {
  if (!file.empty()) return Kek::ReadFile(file);
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment.
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY")) {
    const std::string path = std::string(dir) + "/caseledger-kek";
    if (::access(path.c_str(), F_OK) == 0) return Kek::ReadFile(path);
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing sets the environment.
  if (const char* text = std::getenv("CASELEDGER_KEK")) {
    return Kek::FromText(text, "CASELEDGER_KEK");
  }
  return Status::NotFound(
      "no key-encryption key (KEK): give --kek-file FILE (mode 0600), a "
      "systemd credential named caseledger-kek, or CASELEDGER_KEK (64 hex "
      "digits); `caseledger keys new-kek FILE` makes one");
}

}  // namespace caseledger::keys

// Envelope encryption's keys: the key-encryption key (KEK), which lives
// outside the store, and the data keys, one per case for its free text and
// one per person of a case for that person's details, kept only wrapped by
// the KEK in the key store (a RocksDB database of its own, beside the log).
//
// Cipher: AES-256-GCM (OpenSSL), a random 96-bit nonce per encryption. A data
// key encrypts the fields of one case or one person, a few hundred values
// over the case's life, and the KEK wraps each data key once per rotation, so
// random nonces stay far below the 2^32 messages per key where GCM's nonce
// collisions start to matter.
//
// Erasure destroys data keys: every ciphertext made with them, in the log,
// its write-ahead log, the read models, backups or any copy, becomes
// unreadable at once, while the hash chains (over the ciphertext) still
// verify. A destroyed key is physically gone from the key store's files (its
// WAL retired and its SST files compacted away), and named in the destroyed
// list, a file kept outside backups and applied whenever the key store opens,
// so restoring an older backup cannot bring it back.
//
// Thread safety: a KeyStore may be used from any number of threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "caseledger/status.h"
#include "caseledger/types.h"

namespace spdlog {
class logger;
}

namespace caseledger::keys {

inline constexpr size_t kKeyBytes = 32;

// 32 secret bytes, wiped when destroyed. Not copyable: share it by pointer.
class SecretKey {
 public:
  SecretKey() = default;
  ~SecretKey();
  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;

  uint8_t* data() { return bytes_; }
  const uint8_t* data() const { return bytes_; }

 private:
  uint8_t bytes_[kKeyBytes] = {};
};

// The key-encryption key. Its text form (a file, an environment variable or
// a systemd credential) is 64 hexadecimal digits, optionally followed by a
// newline.
class Kek {
 public:
  // Reads a KEK file. Refused (kPermissionDenied) unless it is a regular
  // file that neither its group nor others may read or write (mode 0600 or
  // stricter); kInvalidArgument if it does not hold a KEK.
  static StatusOr<std::shared_ptr<const Kek>> ReadFile(const std::string& path);
  // From text: `source` names where it came from, for messages.
  static StatusOr<std::shared_ptr<const Kek>> FromText(std::string_view text,
                                                       std::string_view source);
  // A new random KEK, written to `path` with mode 0600. Never overwrites:
  // kAlreadyExists if `path` exists.
  static StatusOr<std::shared_ptr<const Kek>> CreateFile(
      const std::string& path);
  // A new random KEK held in memory only (tests).
  static std::shared_ptr<const Kek> Generate();

  // 16 hex digits that name this KEK without revealing it (a truncated
  // SHA-256 of a label and the key): stored with every key it wraps.
  const std::string& id() const { return id_; }
  const SecretKey& key() const { return key_; }

  Kek(const Kek&) = delete;
  Kek& operator=(const Kek&) = delete;

 private:
  Kek() = default;
  static std::shared_ptr<const Kek> FromBytes(const uint8_t* bytes);
  SecretKey key_;
  std::string id_;
};

// A 32-byte secret kept as 64 hexadecimal digits (and a newline) in a file
// of its own: a KEK, or replication's signing key. `what` names it in
// messages. Reading refuses (kPermissionDenied) a file that is not regular
// or that its group or others may read or write (mode 0600 or stricter);
// kInvalidArgument if it does not hold one. Creating makes a new random
// one with mode 0600, synced, and never overwrites (kAlreadyExists).
StatusOr<std::unique_ptr<SecretKey>> ReadSecretFile(const std::string& path,
                                                    std::string_view what);
StatusOr<std::unique_ptr<SecretKey>> CreateSecretFile(const std::string& path,
                                                      std::string_view what);

// Where a KEK comes from, in the order `serve` looks: an explicit file, a
// systemd credential ($CREDENTIALS_DIRECTORY/caseledger-kek), then the
// environment variable CASELEDGER_KEK. kNotFound (with a message saying all
// three) when none is given.
StatusOr<std::shared_ptr<const Kek>> LoadKek(const std::string& file);

// A data key's scope within its case: the case's own free text, or one
// person of the case, by their person_ref.
struct Scope {
  static std::string Case() { return "case"; }
  static std::string Person(std::string_view person_ref) {
    return "person:" + std::string(person_ref);
  }
};

// A destroyed key (or a whole case's keys), as the destroyed list holds it.
struct Destroyed {
  std::string case_id;
  std::string scope;  // "*": every key of the case, now and later
  Timestamp at;
  std::string reason;  // e.g. the PersonalDataErased event's id
};

// A data key as the key store holds it: wrapped by a KEK (the wrapping
// names which), bound to its case and scope. Safe to ship to a replica that
// holds the same KEK: without it, the bytes are ciphertext.
struct WrappedKey {
  std::string case_id;
  std::string scope;
  std::string wrapped;
  bool operator==(const WrappedKey&) const = default;
};

struct KeyStoreOptions {
  bool create_if_missing = true;
  bool read_only = false;
  // Sync every write that creates, re-wraps or destroys a key (a data key
  // must be durable before the first event sealed with it is).
  bool sync = true;
  // Where the destroyed list lives: a file outside the key store's
  // directory and outside backups. Empty: `<dir>.destroyed`.
  std::string destroyed_list;
  // Unwrapped data keys kept in memory, at most.
  size_t cache_entries = 10000;
  std::function<Timestamp()> clock;  // null: the system clock
  std::shared_ptr<spdlog::logger> logger;
};

class KeyStore {
 public:
  // Opens the key store in `dir`. `kek` wraps new keys; `older` are KEKs
  // that may still wrap some (during a rotation). Applies the destroyed
  // list: a key it names that is still stored (a restored backup, a crash
  // mid-erasure) is destroyed before Open returns. kFailedPrecondition if
  // the store's keys are wrapped by none of the KEKs given.
  static Status Open(const KeyStoreOptions& options, const std::string& dir,
                     std::shared_ptr<const Kek> kek,
                     const std::vector<std::shared_ptr<const Kek>>& older,
                     std::unique_ptr<KeyStore>* store);

  virtual ~KeyStore() = default;

  // The data keys of (case, each scope), in order, those missing created
  // together in one durable write. kFailedPrecondition naming the erasure
  // if one was destroyed.
  virtual StatusOr<std::vector<std::shared_ptr<const SecretKey>>> GetOrCreate(
      std::string_view case_id, const std::vector<std::string>& scopes) = 0;

  // The data key of (case, scope). nullptr if it was destroyed (the caller
  // shows the data as erased); kNotFound if there never was one.
  virtual StatusOr<std::shared_ptr<const SecretKey>> Get(
      std::string_view case_id, std::string_view scope) const = 0;

  // Whether (case, scope) was destroyed.
  virtual bool IsDestroyed(std::string_view case_id,
                           std::string_view scope) const = 0;

  // Destroys the key of (case, scope), or with scope "*" every key of the
  // case (and refuses to create more). Irreversible: the destroyed list is
  // written and synced first, then the keys are deleted and the key
  // store's WAL and tables rewritten without them. Idempotent.
  virtual Status Destroy(std::string_view case_id, std::string_view scope,
                         std::string_view reason) = 0;

  // The case's data keys as stored, by scope; none that was destroyed.
  virtual StatusOr<std::vector<WrappedKey>> Wrapped(
      std::string_view case_id) const = 0;

  // Calls `fn` with every data key as stored, in (case, scope) order, none
  // that was destroyed; stops at the first error `fn` returns.
  virtual Status ForEachWrapped(
      const std::function<Status(const WrappedKey&)>& fn) const = 0;

  // The id of the KEK that wraps new keys.
  virtual std::string kek_id() const = 0;

  // Stores keys another key store wrapped (a replica taking its primary's
  // keys), all in one durable write. Each must unwrap with one of this
  // store's KEKs, bound to its case and scope (kFailedPrecondition names
  // the KEK otherwise; kCorruption if it does not unwrap). A destroyed
  // (case, scope) stays destroyed: its key is dropped. A key already stored
  // is replaced only by the same key wrapped anew (a rotation); a different
  // key for the same case and scope is kCorruption. On any error nothing
  // is stored.
  virtual Status PutWrapped(const std::vector<WrappedKey>& keys) = 0;

  // Every entry of the destroyed list.
  virtual StatusOr<std::vector<Destroyed>> DestroyedKeys() const = 0;

  // An erasure about to be recorded: once the event `event_id` (of
  // `case_id`) is in the log, (case, scope) must be destroyed. Recorded
  // durably before the event is appended, so a crash between the append and
  // Destroy leaves a trace: whoever opens the store next finishes it
  // (service::FinishPlannedErasures), or drops the plan if the event never
  // reached the log.
  struct PlannedErasure {
    std::string case_id;
    std::string scope;
    std::string event_id;
    bool operator==(const PlannedErasure&) const = default;
  };
  virtual Status PlanErasure(const PlannedErasure& plan) = 0;
  virtual StatusOr<std::vector<PlannedErasure>> PlannedErasures() const = 0;
  // Forgets a plan (carried out, or its event was never written).
  virtual Status DropPlannedErasure(const PlannedErasure& plan) = 0;

  struct RotateReport {
    uint64_t rewrapped = 0;  // keys re-wrapped by this call
    uint64_t already = 0;    // keys already under the new KEK
  };
  // Re-wraps every data key under `new_kek`, in synced batches of `batch`
  // keys; no event changes. A rotation cut short (a crash) leaves each key
  // wrapped by the old KEK or the new one; running it again finishes it.
  // `after_batch` (tests) runs after each batch; an error it returns stops
  // the rotation there, as a crash would.
  virtual StatusOr<RotateReport> Rotate(
      std::shared_ptr<const Kek> new_kek, size_t batch = 256,
      const std::function<Status(uint64_t done)>& after_batch = nullptr) = 0;

  // Counts: data keys stored, and by which KEK id.
  virtual StatusOr<std::vector<std::pair<std::string, uint64_t>>> CountByKek()
      const = 0;

  // A consistent copy of the key store in the new directory `dir` (a
  // RocksDB checkpoint). The destroyed list is not copied: it stays
  // outside backups.
  virtual Status Backup(const std::string& dir) = 0;

  // The directory and the destroyed list's path.
  virtual const std::string& dir() const = 0;
  virtual const std::string& destroyed_list() const = 0;
};

}  // namespace caseledger::keys

// The key store: wrapped data keys in a RocksDB database of their own.
//
//   "k" case_id \0 scope -> u8(1) ‖ KEK id (16 hex digits) ‖
//                           AES-256-GCM(KEK, ad, data key)
//   "m" "kek"            -> the id of the KEK that wraps new keys
//   "p" case_id \0 scope \0 event id -> "" (an erasure planned: PlanErasure)
//
// The wrapping's associated data is "caseledger dek 1\0" case_id \0 scope,
// so a wrapped key copied to another case or scope does not unwrap.
// Nothing is compressed: the tables are small, and a test that searches the
// files for a destroyed key's bytes must be able to find them before.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <rocksdb/db.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <list>
#include <map>
#include <set>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "caseledger/keys/keys.h"
#include "caseledger/mutex.h"
#include "caseledger/storage.h"
#include "engine/keys/src/aead.h"
#include "engine/keys/src/open_with_env.h"

namespace caseledger::keys {
namespace {

// errno's text (std::strerror is not thread-safe; this is).
std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

constexpr char kFormat = 1;
constexpr size_t kKekIdChars = 16;

std::string KeyName(std::string_view case_id, std::string_view scope) {
  std::string k = "k";
  k.append(case_id);
  k.push_back('\0');
  k.append(scope);
  return k;
}

std::string CasePrefix(std::string_view case_id) {
  std::string k = "k";
  k.append(case_id);
  k.push_back('\0');
  return k;
}

std::string WrapAd(std::string_view case_id, std::string_view scope) {
  std::string ad = "caseledger dek 1";
  ad.push_back('\0');
  ad.append(case_id);
  ad.push_back('\0');
  ad.append(scope);
  return ad;
}

// Valid in a case id or a scope: no tab, newline or NUL (the destroyed
// list is tab-separated lines, and key names use NUL).
bool Clean(std::string_view s) {
  return !s.empty() && s.find_first_of(std::string_view("\t\n\r\0", 4)) ==
                           std::string_view::npos;
}

std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r' || c == '\0') c = ' ';
  }
  return out;
}

Timestamp SystemNow() {
  return Timestamp(std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count());
}

// A bounded map from key name to unwrapped key, least recently used first
// out.
class KeyCache {
 public:
  explicit KeyCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<const SecretKey> Find(const std::string& name) {
    auto it = index_.find(name);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }
  void Insert(const std::string& name, std::shared_ptr<const SecretKey> key) {
    if (capacity_ == 0) return;
    auto it = index_.find(name);
    if (it != index_.end()) {
      it->second->second = std::move(key);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(name, std::move(key));
    index_.emplace(name, order_.begin());
    if (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  // Drops every key whose name starts with `prefix`.
  void EraseWithPrefix(const std::string& prefix) {
    for (auto it = order_.begin(); it != order_.end();) {
      if (it->first.compare(0, prefix.size(), prefix) == 0) {
        index_.erase(it->first);
        it = order_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const SecretKey>>;
  size_t capacity_;
  std::list<Entry> order_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

class KeyStoreImpl final : public KeyStore {
 public:
  KeyStoreImpl(KeyStoreOptions o, std::string dir, std::string list,
               rocksdb::Env* env = nullptr)
      : o_(std::move(o)),
        dir_(std::move(dir)),
        list_(std::move(list)),
        env_(env),
        cache_(o_.cache_entries) {}

  ~KeyStoreImpl() override = default;  // the DB closes with its last user

  Status Init(std::shared_ptr<const Kek> kek,
              const std::vector<std::shared_ptr<const Kek>>& older) {
    if (!kek) return Status::InvalidArgument("no KEK given");
    MutexLock w(&write_mu_);
    kek_ = std::move(kek);
    {
      MutexLock l(&mu_);
      keks_[kek_->id()] = kek_;
      for (const auto& k : older) {
        if (k) keks_.emplace(k->id(), k);
      }
    }
    rocksdb::Options ro;
    ro.create_if_missing = o_.create_if_missing && !o_.read_only;
    ro.compression = rocksdb::kNoCompression;
    ro.bottommost_compression = rocksdb::kNoCompression;
    ro.info_log = RocksLogger(o_.logger);
    // Obsolete write-ahead logs are deleted, never archived or recycled:
    // a destroyed key must not live on in one.
    ro.WAL_ttl_seconds = 0;
    ro.WAL_size_limit_MB = 0;
    ro.recycle_log_file_num = 0;
    ro.max_open_files = 64;
    // Recovery from a full disk is ours (EnsureWritable), not RocksDB's.
    ro.listeners.push_back(ManualErrorRecovery());
    if (env_ != nullptr) ro.env = env_;
    options_ = ro;
    rocksdb::Status rs = OpenDb(o_.read_only);
    if (!o_.read_only && rs.IsNoSpace() && OpenDb(true).ok()) {
      // A full disk: open to read; writable again once there is room
      // (EnsureWritable), as the event store does.
      degraded_ = true;
      if (o_.logger) {
        o_.logger->warn(
            "key store {}: the disk is full; opened read-only "
            "until there is room",
            dir_);
      }
      rs = rocksdb::Status::OK();
    }
    if (!rs.ok()) return FromRocks(rs, "opening the key store " + dir_);

    std::string current;
    rs = Db()->Get(rocksdb::ReadOptions(), "mkek", &current);
    if (rs.ok()) {
      bool known = false;
      {
        MutexLock l(&mu_);
        known = keks_.count(current) > 0;
      }
      if (!known) {
        return Status::FailedPrecondition(
            "the key store " + dir_ + " is wrapped by KEK " + current +
            "; the KEK given is " + kek_->id() +
            " (a rotation to it finished: give the new KEK)");
      }
    } else if (!rs.IsNotFound()) {
      return FromRocks(rs, "reading the key store");
    } else if (!o_.read_only && !degraded_) {
      rocksdb::WriteOptions wo;
      wo.sync = o_.sync;
      RETURN_IF_ERROR(
          Wrote(Db()->Put(wo, "mkek", kek_->id()), "writing the key store"));
    }
    RETURN_IF_ERROR(LoadDestroyedList());
    // (On a full disk, the list is applied once the store is writable.)
    if (!o_.read_only && !degraded_) RETURN_IF_ERROR(ApplyDestroyedList());
    return Status::OK();
  }

  StatusOr<std::vector<std::shared_ptr<const SecretKey>>> GetOrCreate(
      std::string_view case_id,
      const std::vector<std::string>& scopes) override {
    std::vector<std::shared_ptr<const SecretKey>> out(scopes.size());
    std::vector<size_t> missing;
    for (size_t i = 0; i < scopes.size(); ++i) {
      StatusOr<std::shared_ptr<const SecretKey>> got = Get(case_id, scopes[i]);
      if (got.ok() && !*got) return Erased(case_id, scopes[i]);
      if (got.ok()) {
        out[i] = std::move(*got);
      } else if (got.status().IsNotFound()) {
        missing.push_back(i);
      } else {
        return got.status();
      }
    }
    if (missing.empty()) return out;
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    MutexLock w(&write_mu_);
    RETURN_IF_ERROR(EnsureWritable());
    rocksdb::WriteBatch wb;
    for (size_t i : missing) {
      {
        MutexLock l(&mu_);
        if (DestroyedLocked(case_id, scopes[i])) {
          return Erased(case_id, scopes[i]);
        }
      }
      const std::string name = KeyName(case_id, scopes[i]);
      std::string existing;
      rocksdb::Status rs = Db()->Get(rocksdb::ReadOptions(), name, &existing);
      if (rs.ok()) {
        // Created by another caller since our look.
        ASSIGN_OR_RETURN(out[i], Unwrap(case_id, scopes[i], existing));
        continue;
      }
      if (!rs.IsNotFound()) return FromRocks(rs, "reading the key store");
      auto key = std::make_shared<SecretKey>();
      internal::RandomBytes(key->data(), kKeyBytes);
      wb.Put(name, Wrap(*kek_, case_id, scopes[i], *key));
      out[i] = std::move(key);
    }
    if (wb.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = o_.sync;
      RETURN_IF_ERROR(Wrote(Db()->Write(wo, &wb), "storing data keys"));
    }
    MutexLock l(&mu_);
    for (size_t i : missing) cache_.Insert(KeyName(case_id, scopes[i]), out[i]);
    return out;
  }

  StatusOr<std::shared_ptr<const SecretKey>> Get(
      std::string_view case_id, std::string_view scope) const override {
    if (!Clean(case_id) || !Clean(scope) || scope == "*") {
      return Status::InvalidArgument("not a data key's case and scope");
    }
    const std::string name = KeyName(case_id, scope);
    {
      MutexLock l(&mu_);
      if (auto hit = cache_.Find(name)) return hit;
      if (DestroyedLocked(case_id, scope)) {
        return std::shared_ptr<const SecretKey>();
      }
    }
    std::string wrapped;
    rocksdb::Status rs = Db()->Get(rocksdb::ReadOptions(), name, &wrapped);
    if (rs.IsNotFound()) {
      return Status::NotFound("no data key for " + std::string(scope) +
                              " in case " + std::string(case_id));
    }
    RETURN_IF_ERROR(FromRocks(rs, "reading the key store"));
    ASSIGN_OR_RETURN(auto key, Unwrap(case_id, scope, wrapped));
    MutexLock l(&mu_);
    // An erasure between the read and now wins.
    if (DestroyedLocked(case_id, scope)) {
      return std::shared_ptr<const SecretKey>();
    }
    cache_.Insert(name, key);
    return key;
  }

  bool IsDestroyed(std::string_view case_id,
                   std::string_view scope) const override {
    MutexLock l(&mu_);
    return DestroyedLocked(case_id, scope);
  }

  Status Destroy(std::string_view case_id, std::string_view scope,
                 std::string_view reason) override {
    if (!Clean(case_id) || !Clean(scope)) {
      return Status::InvalidArgument("not a data key's case and scope");
    }
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    MutexLock w(&write_mu_);
    RETURN_IF_ERROR(EnsureWritable());
    Destroyed d{std::string(case_id), std::string(scope), Now(),
                OneLine(reason)};
    RETURN_IF_ERROR(AppendToList(d));
    {
      MutexLock l(&mu_);
      destroyed_.insert({d.case_id, d.scope});
      cache_.EraseWithPrefix(scope == "*" ? CasePrefix(case_id)
                                          : KeyName(case_id, scope));
    }
    RETURN_IF_ERROR(DeleteKeys(case_id, scope));
    return Purge();
  }

  StatusOr<std::vector<WrappedKey>> Wrapped(
      std::string_view case_id) const override {
    if (!Clean(case_id)) return Status::InvalidArgument("not a case id");
    std::vector<WrappedKey> out;
    RETURN_IF_ERROR(ScanWrapped(CasePrefix(case_id), [&](const WrappedKey& k) {
      out.push_back(k);
      return Status::OK();
    }));
    return out;
  }

  Status ForEachWrapped(
      const std::function<Status(const WrappedKey&)>& fn) const override {
    return ScanWrapped("k", fn);
  }

  std::string kek_id() const override {
    MutexLock w(&write_mu_);
    return kek_->id();
  }

  Status PutWrapped(const std::vector<WrappedKey>& keys) override {
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    std::vector<std::shared_ptr<const SecretKey>> given;
    given.reserve(keys.size());
    for (const WrappedKey& key : keys) {
      if (!Clean(key.case_id) || !Clean(key.scope) || key.scope == "*") {
        return Status::InvalidArgument("not a data key's case and scope");
      }
      ASSIGN_OR_RETURN(given.emplace_back(),
                       Unwrap(key.case_id, key.scope, key.wrapped));
    }
    MutexLock w(&write_mu_);
    RETURN_IF_ERROR(EnsureWritable());
    rocksdb::WriteBatch wb;
    std::map<std::string, size_t> in_batch;  // name -> index in `keys`
    for (size_t i = 0; i < keys.size(); ++i) {
      const WrappedKey& key = keys[i];
      {
        MutexLock l(&mu_);
        if (DestroyedLocked(key.case_id, key.scope)) continue;
      }
      const std::string name = KeyName(key.case_id, key.scope);
      const auto differs = [&](const SecretKey& other) {
        return CRYPTO_memcmp(other.data(), given[i]->data(), kKeyBytes) != 0;
      };
      const auto conflict = [&] {
        return Status::Corruption("the data key of " + key.scope + " in case " +
                                  key.case_id + " differs from the one stored");
      };
      if (auto earlier = in_batch.find(name); earlier != in_batch.end()) {
        if (differs(*given[earlier->second])) return conflict();
      } else {
        std::string existing;
        rocksdb::Status rs = Db()->Get(rocksdb::ReadOptions(), name, &existing);
        if (rs.ok()) {
          if (existing == key.wrapped) continue;
          ASSIGN_OR_RETURN(std::shared_ptr<const SecretKey> stored,
                           Unwrap(key.case_id, key.scope, existing));
          if (differs(*stored)) return conflict();
        } else if (!rs.IsNotFound()) {
          return FromRocks(rs, "reading the key store");
        }
      }
      in_batch[name] = i;
      wb.Put(name, key.wrapped);
    }
    if (wb.Count() == 0) return Status::OK();
    rocksdb::WriteOptions wo;
    wo.sync = o_.sync;
    return Wrote(Db()->Write(wo, &wb), "storing data keys");
  }

  StatusOr<std::vector<Destroyed>> DestroyedKeys() const override {
    return ReadList();
  }

  Status PlanErasure(const PlannedErasure& plan) override {
    return WritePlan(plan, /*put=*/true);
  }

  Status DropPlannedErasure(const PlannedErasure& plan) override {
    return WritePlan(plan, /*put=*/false);
  }

  StatusOr<std::vector<PlannedErasure>> PlannedErasures() const override {
    std::vector<PlannedErasure> out;
    std::unique_ptr<rocksdb::Iterator> it(
        Db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("p"); it->Valid() && it->key().starts_with("p"); it->Next()) {
      const std::string name = it->key().ToString();
      const size_t a = name.find('\0');
      const size_t b = name.find('\0', a + 1);
      if (a == std::string::npos || b == std::string::npos) {
        return Status::Corruption("a planned erasure's name is malformed");
      }
      out.push_back({name.substr(1, a - 1), name.substr(a + 1, b - a - 1),
                     name.substr(b + 1)});
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading planned erasures"));
    return out;
  }

  StatusOr<RotateReport> Rotate(
      std::shared_ptr<const Kek> new_kek, size_t batch,
      const std::function<Status(uint64_t)>& after_batch) override {
    if (!new_kek) return Status::InvalidArgument("no new KEK given");
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    MutexLock w(&write_mu_);
    RETURN_IF_ERROR(EnsureWritable());
    {
      MutexLock l(&mu_);
      keks_.emplace(new_kek->id(), new_kek);
    }
    RotateReport report;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rocksdb::WriteBatch wb;
    size_t in_batch = 0;
    const std::shared_ptr<rocksdb::DB> db = Db();
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("k"); it->Valid() && it->key().starts_with("k"); it->Next()) {
      const std::string name = it->key().ToString();
      const size_t nul = name.find('\0');
      const std::string case_id = name.substr(1, nul - 1);
      const std::string scope = name.substr(nul + 1);
      const std::string wrapped = it->value().ToString();
      if (wrapped.size() > kKekIdChars &&
          wrapped.compare(1, kKekIdChars, new_kek->id()) == 0) {
        ++report.already;
        continue;
      }
      ASSIGN_OR_RETURN(auto key, Unwrap(case_id, scope, wrapped));
      wb.Put(name, Wrap(*new_kek, case_id, scope, *key));
      ++report.rewrapped;
      if (++in_batch < batch) continue;
      RETURN_IF_ERROR(Wrote(db->Write(wo, &wb), "re-wrapping keys"));
      wb.Clear();
      in_batch = 0;
      if (after_batch) RETURN_IF_ERROR(after_batch(report.rewrapped));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the key store"));
    it.reset();
    if (in_batch > 0) {
      RETURN_IF_ERROR(Wrote(db->Write(wo, &wb), "re-wrapping keys"));
      if (after_batch) RETURN_IF_ERROR(after_batch(report.rewrapped));
    }
    RETURN_IF_ERROR(
        Wrote(Db()->Put(wo, "mkek", new_kek->id()), "recording the new KEK"));
    kek_ = std::move(new_kek);
    // The keys wrapped by the old KEK must not stay behind in old tables.
    RETURN_IF_ERROR(Purge());
    return report;
  }

  StatusOr<std::vector<std::pair<std::string, uint64_t>>> CountByKek()
      const override {
    std::map<std::string, uint64_t> counts;
    const std::shared_ptr<rocksdb::DB> db = Db();
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek("k"); it->Valid() && it->key().starts_with("k"); it->Next()) {
      const rocksdb::Slice v = it->value();
      if (v.size() > kKekIdChars) {
        ++counts[std::string(v.data() + 1, kKekIdChars)];
      }
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "reading the key store"));
    return std::vector<std::pair<std::string, uint64_t>>(counts.begin(),
                                                         counts.end());
  }

  Status Backup(const std::string& dir) override {
    MutexLock w(&write_mu_);
    rocksdb::Checkpoint* raw = nullptr;
    const std::shared_ptr<rocksdb::DB> db = Db();
    rocksdb::Status rs = rocksdb::Checkpoint::Create(db.get(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    if (rs.ok()) rs = checkpoint->CreateCheckpoint(dir, 0);
    return FromRocks(rs, "backing up the key store to " + dir);
  }

  const std::string& dir() const override { return dir_; }
  const std::string& destroyed_list() const override { return list_; }

 private:
  // Opens the DB in `dir_`, writable or to read only, in place of the one
  // open (which closes once its last user lets it go).
  rocksdb::Status OpenDb(bool read_only) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status rs =
        read_only ? rocksdb::DB::OpenForReadOnly(options_, dir_, &raw)
                  : rocksdb::DB::Open(options_, dir_, &raw);
    if (!rs.ok()) return rs;
    std::shared_ptr<rocksdb::DB> db(raw, [](rocksdb::DB* d) {
      (void)d->Close();
      delete d;
    });
    MutexLock l(&db_mu_);
    db_ = std::move(db);
    return rs;
  }

  std::shared_ptr<rocksdb::DB> Db() const {
    MutexLock l(&db_mu_);
    return db_;
  }

  // A write's status; a failed one (a full disk) leaves RocksDB refusing
  // writes until it is resumed, which the next write tries first.
  Status Wrote(const rocksdb::Status& rs, std::string_view what)
      REQUIRES(write_mu_) {
    if (!rs.ok()) failed_ = true;
    return FromRocks(rs, what);
  }

  // Before a write: a store opened read-only on a full disk is opened
  // writable (its meta written and the destroyed list applied), and one
  // whose last write failed is resumed. Fails (kNoSpace...) while there is
  // still no room; nothing is lost either way.
  Status EnsureWritable() REQUIRES(write_mu_) {
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    if (degraded_) {
      rocksdb::Status rs = OpenDb(false);
      if (!rs.ok()) {
        return FromRocks(rs, "opening the key store to write");
      }
      degraded_ = false;
      std::string current;
      if (Db()->Get(rocksdb::ReadOptions(), "mkek", &current).IsNotFound()) {
        rocksdb::WriteOptions wo;
        wo.sync = o_.sync;
        RETURN_IF_ERROR(
            Wrote(Db()->Put(wo, "mkek", kek_->id()), "writing the key store"));
      }
      RETURN_IF_ERROR(ApplyDestroyedList());
    }
    if (failed_) {
      RETURN_IF_ERROR(FromRocks(Db()->Resume(), "resuming the key store"));
      failed_ = false;
    }
    return Status::OK();
  }

  static Status Erased(std::string_view case_id, std::string_view scope) {
    return Status::FailedPrecondition(
        "the personal data of " + std::string(scope) + " in case " +
        std::string(case_id) + " was erased: no more can be recorded");
  }

  Timestamp Now() const { return o_.clock ? o_.clock() : SystemNow(); }

  bool DestroyedLocked(std::string_view case_id, std::string_view scope) const
      REQUIRES(mu_) {
    const std::string c(case_id);
    return destroyed_.count({c, "*"}) > 0 ||
           destroyed_.count({c, std::string(scope)}) > 0;
  }

  // The keys whose names start with `prefix` ("k": all), less those
  // destroyed, to `fn`.
  Status ScanWrapped(const std::string& prefix,
                     const std::function<Status(const WrappedKey&)>& fn) const {
    std::unique_ptr<rocksdb::Iterator> it(
        Db()->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
         it->Next()) {
      const std::string name = it->key().ToString();
      const size_t nul = name.find('\0');
      if (nul == std::string::npos) {
        return Status::Corruption("a data key's name is malformed");
      }
      WrappedKey k{name.substr(1, nul - 1), name.substr(nul + 1),
                   it->value().ToString()};
      {
        MutexLock l(&mu_);
        if (DestroyedLocked(k.case_id, k.scope)) continue;
      }
      RETURN_IF_ERROR(fn(k));
    }
    return FromRocks(it->status(), "reading the key store");
  }

  static std::string Wrap(const Kek& kek, std::string_view case_id,
                          std::string_view scope, const SecretKey& key) {
    std::string out(1, kFormat);
    out += kek.id();
    out += internal::Encrypt(
        kek.key().data(), WrapAd(case_id, scope),
        std::string_view(reinterpret_cast<const char*>(key.data()), kKeyBytes));
    return out;
  }

  StatusOr<std::shared_ptr<const SecretKey>> Unwrap(
      std::string_view case_id, std::string_view scope,
      const std::string& wrapped) const {
    if (wrapped.size() <= 1 + kKekIdChars || wrapped[0] != kFormat) {
      return Status::Corruption("a wrapped data key of case " +
                                std::string(case_id) + " is malformed");
    }
    const std::string kek_id = wrapped.substr(1, kKekIdChars);
    std::shared_ptr<const Kek> kek;
    {
      MutexLock l(&mu_);
      auto k = keks_.find(kek_id);
      if (k != keks_.end()) kek = k->second;
    }
    if (!kek) {
      return Status::FailedPrecondition(
          "a data key of case " + std::string(case_id) + " is wrapped by KEK " +
          kek_id + ", which was not given");
    }
    std::optional<std::string> plain =
        internal::Decrypt(kek->key().data(), WrapAd(case_id, scope),
                          std::string_view(wrapped).substr(1 + kKekIdChars));
    if (!plain || plain->size() != kKeyBytes) {
      return Status::Corruption("the data key of " + std::string(scope) +
                                " in case " + std::string(case_id) +
                                " does not unwrap (altered, or moved)");
    }
    auto key = std::make_shared<SecretKey>();
    std::memcpy(key->data(), plain->data(), kKeyBytes);
    OPENSSL_cleanse(plain->data(), plain->size());
    return std::shared_ptr<const SecretKey>(std::move(key));
  }

  Status AppendToList(const Destroyed& d) {
    const int fd =
        ::open(list_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Status::IOError("opening the destroyed list " + list_ + ": " +
                             ErrnoText(errno));
    }
    const std::string line = d.case_id + "\t" + d.scope + "\t" +
                             std::to_string(d.at.value()) + "\t" + d.reason +
                             "\n";
    const bool ok = ::write(fd, line.data(), line.size()) ==
                        static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    if (!ok) {
      return Status::IOError("writing the destroyed list " + list_ + ": " +
                             ErrnoText(err));
    }
    // The file may be new: its directory entry must be durable too.
    const std::string parent =
        std::filesystem::path(list_).parent_path().string();
    const int dfd = ::open(parent.empty() ? "." : parent.c_str(),
                           O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      const bool synced = ::fsync(dfd) == 0;
      ::close(dfd);
      if (!synced) return Status::IOError("syncing " + parent);
    }
    return Status::OK();
  }

  // The list's complete lines (a last line cut short by a crash is the
  // Destroy that did not return, and is ignored).
  StatusOr<std::vector<Destroyed>> ReadList() const {
    std::vector<Destroyed> out;
    std::ifstream in(list_, std::ios::binary);
    if (!in) {
      if (::access(list_.c_str(), F_OK) != 0 && errno == ENOENT) return out;
      return Status::IOError("reading the destroyed list " + list_);
    }
    std::string all((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
    size_t start = 0;
    for (size_t nl = all.find('\n'); nl != std::string::npos;
         start = nl + 1, nl = all.find('\n', start)) {
      const std::string line = all.substr(start, nl - start);
      std::vector<std::string> f;
      size_t from = 0;
      for (size_t tab = line.find('\t');
           f.size() < 3 && tab != std::string::npos;
           from = tab + 1, tab = line.find('\t', from)) {
        f.push_back(line.substr(from, tab - from));
      }
      f.push_back(line.substr(from));
      if (f.size() != 4 || f[0].empty() || f[1].empty()) {
        return Status::Corruption(
            "the destroyed list " + list_ +
            " has a malformed line: " + std::to_string(out.size() + 1));
      }
      int64_t at = 0;
      try {
        at = std::stoll(f[2]);
      } catch (const std::exception&) {
        return Status::Corruption("the destroyed list " + list_ +
                                  " has a malformed time");
      }
      out.push_back({f[0], f[1], Timestamp(at), f[3]});
    }
    return out;
  }

  Status LoadDestroyedList() {
    ASSIGN_OR_RETURN(std::vector<Destroyed> list, ReadList());
    MutexLock l(&mu_);
    for (const Destroyed& d : list) destroyed_.insert({d.case_id, d.scope});
    return Status::OK();
  }

  // Deletes what the list names but the store still holds (a restored
  // backup, or a crash between the list and the deletion).
  // A plan's name: "p" case \0 scope \0 event id (empty value).
  Status WritePlan(const PlannedErasure& plan, bool put) {
    if (!Clean(plan.case_id) || !Clean(plan.scope) || !Clean(plan.event_id)) {
      return Status::InvalidArgument("not a planned erasure");
    }
    if (o_.read_only) {
      return Status::FailedPrecondition("the key store is open read-only");
    }
    MutexLock w(&write_mu_);
    RETURN_IF_ERROR(EnsureWritable());
    std::string name = "p" + plan.case_id;
    name.push_back('\0');
    name += plan.scope;
    name.push_back('\0');
    name += plan.event_id;
    rocksdb::WriteOptions wo;
    wo.sync = o_.sync;
    return Wrote(put ? Db()->Put(wo, name, "") : Db()->Delete(wo, name),
                 "recording a planned erasure");
  }

  Status ApplyDestroyedList() REQUIRES(write_mu_) {
    std::set<std::pair<std::string, std::string>> list;
    {
      MutexLock l(&mu_);
      list = destroyed_;
    }
    bool any = false;
    for (const auto& [case_id, scope] : list) {
      bool deleted = false;
      RETURN_IF_ERROR(DeleteKeys(case_id, scope, &deleted));
      any = any || deleted;
    }
    if (!any) return Status::OK();
    if (o_.logger) {
      o_.logger->info("key store: destroyed keys the destroyed list names");
    }
    return Purge();
  }

  Status DeleteKeys(std::string_view case_id, std::string_view scope,
                    bool* deleted = nullptr) REQUIRES(write_mu_) {
    rocksdb::WriteBatch wb;
    if (scope == "*") {
      const std::string prefix = CasePrefix(case_id);
      const std::shared_ptr<rocksdb::DB> db = Db();
      std::unique_ptr<rocksdb::Iterator> it(
          db->NewIterator(rocksdb::ReadOptions()));
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
           it->Next()) {
        wb.Delete(it->key());
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "reading the key store"));
    } else {
      std::string v;
      rocksdb::Status rs =
          Db()->Get(rocksdb::ReadOptions(), KeyName(case_id, scope), &v);
      if (rs.ok()) {
        wb.Delete(KeyName(case_id, scope));
      } else if (!rs.IsNotFound()) {
        return FromRocks(rs, "reading the key store");
      }
    }
    if (deleted) *deleted = wb.Count() > 0;
    if (wb.Count() == 0) return Status::OK();
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return Wrote(Db()->Write(wo, &wb), "deleting data keys");
  }

  // Rewrites the store's files without anything deleted or overwritten:
  // the memtable is flushed (retiring the WAL that held the old values),
  // then every table is compacted into one at the bottom, where deletions
  // drop what they delete. The files replaced are removed before this
  // returns (waited for, up to a few seconds).
  Status Purge() REQUIRES(write_mu_) {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    RETURN_IF_ERROR(Wrote(Db()->Flush(fo), "flushing the key store"));
    rocksdb::CompactRangeOptions co;
    co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    co.exclusive_manual_compaction = true;
    RETURN_IF_ERROR(Wrote(Db()->CompactRange(co, nullptr, nullptr),
                          "compacting the key store"));
    return WaitForObsoleteFiles();
  }

  Status WaitForObsoleteFiles() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      std::vector<rocksdb::LiveFileMetaData> live;
      Db()->GetLiveFilesMetaData(&live);
      std::set<std::string> live_names;
      for (const auto& f : live) {
        live_names.insert(std::filesystem::path(f.name).filename().string());
      }
      rocksdb::VectorLogPtr wals;
      RETURN_IF_ERROR(FromRocks(Db()->GetSortedWalFiles(wals),
                                "listing the key store's logs"));
      std::unique_ptr<rocksdb::LogFile> current;
      RETURN_IF_ERROR(FromRocks(Db()->GetCurrentWalFile(&current),
                                "finding the key store's log"));
      // (An empty current log is not among the sorted ones.)
      if (current) wals.push_back(std::move(current));
      std::set<std::string> live_wals;
      for (const auto& w : wals) {
        live_wals.insert(
            std::filesystem::path(w->PathName()).filename().string());
      }
      bool stale = false;
      std::error_code ec;
      for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
        const std::string n = entry.path().filename().string();
        const bool sst = n.size() > 4 && n.ends_with(".sst");
        const bool log = n.size() > 4 && n.ends_with(".log");
        if ((sst && !live_names.count(n)) || (log && !live_wals.count(n))) {
          stale = true;
          if (std::chrono::steady_clock::now() > deadline) {
            return Status::IOError("the key store's replaced file " + n +
                                   " was not removed in time");
          }
        }
      }
      if (ec) return Status::IOError("listing " + dir_ + ": " + ec.message());
      if (!stale) return Status::OK();
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::IOError(
            "the key store's replaced files were not removed in time");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  const KeyStoreOptions o_;
  const std::string dir_;
  const std::string list_;
  rocksdb::Env* const env_;   // tests' (a power cut); null: the default
  rocksdb::Options options_;  // set once, while opening
  mutable Mutex db_mu_;
  std::shared_ptr<rocksdb::DB> db_ GUARDED_BY(db_mu_);
  // Serialises what writes: creation, destruction, rotation, backup.
  mutable Mutex write_mu_;
  bool degraded_ GUARDED_BY(write_mu_) = false;  // read-only: disk full
  bool failed_ GUARDED_BY(write_mu_) = false;    // the last write failed
  // The KEK that wraps new keys: set while opening and by a rotation.
  std::shared_ptr<const Kek> kek_ GUARDED_BY(write_mu_);
  mutable Mutex mu_;
  // Every KEK given, by id.
  std::map<std::string, std::shared_ptr<const Kek>> keks_ GUARDED_BY(mu_);
  mutable KeyCache cache_ GUARDED_BY(mu_);
  std::set<std::pair<std::string, std::string>> destroyed_ GUARDED_BY(mu_);
};

}  // namespace

namespace internal {

Status OpenWithEnv(const KeyStoreOptions& options, const std::string& dir,
                   rocksdb::Env* env, std::shared_ptr<const Kek> kek,
                   const std::vector<std::shared_ptr<const Kek>>& older,
                   std::unique_ptr<KeyStore>* store) {
  std::string list = options.destroyed_list.empty() ? dir + ".destroyed"
                                                    : options.destroyed_list;
  auto impl =
      std::make_unique<KeyStoreImpl>(options, dir, std::move(list), env);
  RETURN_IF_ERROR(impl->Init(std::move(kek), older));
  *store = std::move(impl);
  return Status::OK();
}

}  // namespace internal

Status KeyStore::Open(const KeyStoreOptions& options, const std::string& dir,
                      std::shared_ptr<const Kek> kek,
                      const std::vector<std::shared_ptr<const Kek>>& older,
                      std::unique_ptr<KeyStore>* store) {
  std::string list = options.destroyed_list.empty() ? dir + ".destroyed"
                                                    : options.destroyed_list;
  auto impl = std::make_unique<KeyStoreImpl>(options, dir, std::move(list));
  RETURN_IF_ERROR(impl->Init(std::move(kek), older));
  *store = std::move(impl);
  return Status::OK();
}

}  // namespace caseledger::keys

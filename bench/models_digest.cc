// The read models of a store, rebuilt, as one SHA-256 per column family:
// the check that a change meant to leave behaviour alone (a refactoring)
// writes the same bytes. Run the build before and the build after on the
// same store and compare the lines.
//
//   models_digest STORE_DIR MODELS_DIR   (MODELS_DIR: new or disposable)
#include <openssl/evp.h>
#include <rocksdb/db.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "caseledger/event_store.h"
#include "caseledger/projections/read_models.h"

namespace {

// Self-contained (no engine helpers), so that the same file builds against
// older commits for the comparison.
void PutSize(std::string* dst, uint64_t v) {
  for (int i = 7; i >= 0; --i) dst->push_back(static_cast<char>(v >> (8 * i)));
}

std::string Sha256(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 0xF]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace caseledger;
  if (argc != 3) {
    std::cerr << "usage: models_digest STORE_DIR MODELS_DIR\n";
    return 2;
  }
  Options o;
  o.read_only = true;
  o.create_if_missing = false;
  std::unique_ptr<EventStore> store;
  if (Status s = EventStore::Open(o, argv[1], &store); !s.ok()) {
    std::cerr << "models_digest: " << s.ToString() << "\n";
    return 1;
  }
  auto catalog = domain::EventCatalog::Load();
  if (!catalog.ok()) return 1;
  {
    auto models = projections::ReadModels::Open(argv[2], *store, *catalog,
                                                nullptr, "models-digest-key-0");
    if (!models.ok()) {
      std::cerr << "models_digest: " << models.status().ToString() << "\n";
      return 1;
    }
    if (Status s = (*models)->Rebuild(projections::RebuildOptions{}); !s.ok()) {
      std::cerr << "models_digest: " << s.ToString() << "\n";
      return 1;
    }
  }
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), argv[2], &names)
           .ok()) {
    return 1;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names)
    descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), argv[2], descs,
                                    &handles, &raw)
           .ok()) {
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  for (size_t i = 0; i < handles.size(); ++i) {
    // Each entry as be64(key size) key be64(value size) value, hashed in
    // key order.
    std::string all;
    size_t entries = 0;
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      PutSize(&all, it->key().size());
      all.append(it->key().data(), it->key().size());
      PutSize(&all, it->value().size());
      all.append(it->value().data(), it->value().size());
      ++entries;
    }
    std::cout << names[i] << " " << entries << " " << Sha256(all) << "\n";
  }
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  return 0;
}

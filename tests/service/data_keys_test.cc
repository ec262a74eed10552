// The data keys of a data directory as the server and the command line
// open them: refused without a KEK, carried by backups (wrapped), and
// restored with the old store's destroyed-keys list applied.
#include <gtest/gtest.h>

#include <filesystem>

#include "caseledger/service/case_service.h"
#include "caseledger/service/operations.h"
#include "tests/support/test_support.h"

namespace caseledger::service {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// (The environment is changed only here, before any thread reads it.)
// NOLINTBEGIN(concurrency-mt-unsafe)
TEST(DataKeysTest, NoKekNoStart) {
  testing::TempDir root;
  ::unsetenv("CASELEDGER_KEK");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  auto keys =
      OpenDataKeys(root.path() + "/data", KeyConfig{}, *catalog, nullptr);
  EXPECT_TRUE(keys.status().IsNotFound());
  EXPECT_NE(keys.status().message().find("keys new-kek"), std::string::npos);
  // Nothing was made.
  EXPECT_FALSE(fs::exists(root.path() + "/data"));
}
// NOLINTEND(concurrency-mt-unsafe)

TEST(DataKeysTest, ARestoreAppliesTheOldStoresDestroyedList) {
  testing::TempDir root;
  const std::string data = root.path() + "/data";
  KeyConfig kc;
  kc.kek_file = root.path() + "/kek";
  ASSERT_OK(keys::Kek::CreateFile(kc.kek_file));
  auto catalog = domain::EventCatalog::Load();
  ASSERT_OK(catalog);
  std::string backup;
  {
    Options o;
    o.sync = false;
    auto store = testing::OpenStore(data, o);
    auto keys = OpenDataKeys(data, kc, *catalog, nullptr);
    ASSERT_OK(keys);
    CaseService svc(*store, *catalog, domain::DomainConfig{}, *keys->sealer);
    Json report = testing::ReportBody();
    report["people_involved"][0]["name"] = "Philippa Quennell";
    ASSERT_OK(svc.Execute("case-1", "report", report,
                          {"user:dsl-1", domain::Role::kDsl}));
    auto made = BackUp(*store, *keys->store, data, "", root.path() + "/b");
    ASSERT_OK(made);
    backup = (*made)["backup"];
    EXPECT_TRUE(fs::is_directory(KeysDir(backup)));
    // Erased after the backup was made.
    ASSERT_OK(keys->store->Destroy("case-1", keys::Scope::Person("person-1"),
                                   "erasure e-1"));
    ASSERT_OK(store->Close());
  }
  const std::string restored = root.path() + "/restored";
  ASSERT_OK(RestoreBackup(backup, restored));
  auto applied = RestoreKeys(backup, restored, {KeysDir(data) + ".destroyed"},
                             kc, *catalog, nullptr);
  ASSERT_OK(applied);
  EXPECT_EQ(*applied, 1u);
  // The restored store reads the person as erased, the rest as written.
  Options o;
  o.create_if_missing = false;
  auto store = testing::OpenStore(restored, o);
  auto keys = OpenDataKeys(restored, kc, *catalog, nullptr);
  ASSERT_OK(keys);
  CaseService svc(*store, *catalog, domain::DomainConfig{}, *keys->sealer);
  auto events =
      store->ReadStream("case-1", StreamVersion(1), Direction::kForward, 10);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  auto opened = svc.ToOpenedEvent((*events)[0]);
  ASSERT_OK(opened);
  EXPECT_EQ(opened->payload["people_involved"][0]["name"], "[erased]");
  EXPECT_EQ(opened->payload["facts"], testing::ReportBody()["facts"]);
  // And restoring without the list would have brought it back: the
  // backup itself still holds the key.
  const std::string careless = root.path() + "/careless";
  ASSERT_OK(RestoreBackup(backup, careless));
  ASSERT_OK(RestoreKeys(backup, careless, {}, kc, *catalog, nullptr));
  auto other = OpenDataKeys(careless, kc, *catalog, nullptr);
  ASSERT_OK(other);
  auto key = other->store->Get("case-1", keys::Scope::Person("person-1"));
  ASSERT_OK(key);
  EXPECT_NE(*key, nullptr);
}

}  // namespace
}  // namespace caseledger::service

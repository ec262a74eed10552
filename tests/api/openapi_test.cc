// schemas/openapi.yaml and the router describe the same API.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "api/case_routes.h"
#include "api/handlers.h"
#include "caseledger/domain/policy.h"
#include "tests/support/test_support.h"

namespace caseledger::api {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "METHOD /path" for every operation under `paths:`.
std::set<std::string> DocumentedRoutes(const std::string& yaml) {
  std::set<std::string> out;
  std::istringstream in(yaml);
  std::string line, path;
  bool in_paths = false;
  static const std::regex kPath(R"(^  (/\S*):\s*$)");
  static const std::regex kMethod(R"(^    (get|post|put|patch|delete):\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (in_paths && !line.empty() && line[0] != ' ') break;
    if (!in_paths) continue;
    if (std::regex_match(line, m, kPath)) {
      path = m[1];
    } else if (std::regex_match(line, m, kMethod)) {
      std::string method = m[1];
      std::transform(method.begin(), method.end(), method.begin(), ::toupper);
      out.insert(method + " " + path);
    }
  }
  return out;
}

TEST(OpenApiTest, TheDocumentAndTheRouterListTheSameRoutes) {
  testing::TempDir dir;
  Options o;
  o.sync = false;
  auto store = testing::OpenStore(dir.path(), o);
  auto catalog = domain::EventCatalog::Load();
  ASSERT_TRUE(catalog.ok());
  testing::TestKeys keys(*catalog);
  service::CaseService service(*store, *catalog, domain::DomainConfig{},
                               keys.sealer());
  TokenRegistry tokens(*store);
  WorkerPool workers(1);
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::null_sink_mt>());
  CaseRouteDeps deps{*store, service, tokens, workers, nullptr, logger};
  HttpMetrics metrics;
  Router router;
  AddOperationalRoutes(router, *store, metrics);
  AddCaseRoutes(router, deps);

  std::vector<std::string> routes = router.Routes();
  std::set<std::string> served(routes.begin(), routes.end());
  std::set<std::string> documented = DocumentedRoutes(
      ReadFile(std::string(CASELEDGER_SOURCE_DIR) + "/schemas/openapi.yaml"));
  EXPECT_EQ(served, documented);
  EXPECT_GE(documented.size(), 10u);
  workers.Stop();
}

TEST(OpenApiTest, TheDocumentListsEveryCommand) {
  std::string yaml =
      ReadFile(std::string(CASELEDGER_SOURCE_DIR) + "/schemas/openapi.yaml");
  size_t start = yaml.find("enum: [assign-lead");
  ASSERT_NE(start, std::string::npos);
  size_t end = yaml.find(']', start);
  std::string list = yaml.substr(start + 7, end - start - 7);
  std::set<std::string> documented;
  std::regex word(R"([a-z-]+)");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), word);
       it != std::sregex_iterator(); ++it) {
    documented.insert(it->str());
  }
  std::set<std::string> commands;
  for (const std::string& c : domain::CommandNames()) {
    if (c != "report") commands.insert(c);  // report is POST /v1/cases
  }
  EXPECT_EQ(documented, commands);
}

}  // namespace
}  // namespace caseledger::api

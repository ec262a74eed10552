// Child process of the projection crash tests: opens the read models over a
// store and catches them up, writing "ready\n" once open and "done\n" once
// caught up. The parent kills it with SIGKILL somewhere in between. With
// "rebuild" after the directories: catches up, writes "ready\n", rebuilds,
// writes "rebuilt\n" and waits to be killed (so nothing is flushed at a
// clean close).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "caseledger/domain/catalog.h"
#include "caseledger/event_store.h"
#include "caseledger/projections/read_models.h"

using namespace caseledger;

namespace {
void Say(const char* line) {
  ssize_t n = write(STDOUT_FILENO, line, std::char_traits<char>::length(line));
  (void)n;
}
}  // namespace

int main(int argc, char** argv) {
  const bool rebuild = argc == 4 && std::string(argv[3]) == "rebuild";
  if (argc != 3 && !rebuild) {
    std::fprintf(stderr,
                 "usage: projection_worker STORE_DIR MODELS_DIR [rebuild]\n");
    return 2;
  }
  Options options;
  options.read_only = true;
  options.create_if_missing = false;
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(options, argv[1], &store);
  if (!s.ok()) {
    std::fprintf(stderr, "open store: %s\n", s.ToString().c_str());
    return 1;
  }
  auto catalog = domain::EventCatalog::Load();
  if (!catalog.ok()) return 1;
  auto models = projections::ReadModels::Open(
      argv[2], *store, *catalog, nullptr, "crash-test-key-0123456");
  if (!models.ok()) {
    std::fprintf(stderr, "open models: %s\n",
                 models.status().ToString().c_str());
    return 1;
  }
  if (!rebuild) Say("ready\n");
  s = (*models)->CatchUp();
  if (!s.ok()) {
    std::fprintf(stderr, "catch up: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!rebuild) {
    Say("done\n");
    return 0;
  }
  Say("ready\n");
  s = (*models)->Rebuild();
  if (!s.ok()) {
    std::fprintf(stderr, "rebuild: %s\n", s.ToString().c_str());
    return 1;
  }
  Say("rebuilt\n");
  for (;;) pause();
}

// Child process of the crash test. Appends to a store with sync on, from
// several threads, and after each acknowledged append writes one line
//   <event-id> <position> <case> <version>\n
// per event to stdout (one write(2) per append, so lines never interleave).
// It runs until it is killed.
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "caseledger/event_store.h"

using namespace caseledger;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_appender DIR SEED\n");
    return 2;
  }
  std::unique_ptr<EventStore> store;
  Status s = EventStore::Open(Options(), argv[1], &store);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.ToString().c_str());
    return 1;
  }
  const unsigned seed = static_cast<unsigned>(std::stoul(argv[2]));
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed * 31 + t);
      for (;;) {
        std::string stream = "crash-" + std::to_string(rng() % 16);
        std::vector<ProposedEvent> events(1 + rng() % 3);
        for (auto& e : events) {
          e.event_id = EventId::NewV7();
          e.type = "CrashTestEvent";
          e.actor = Actor{"crash-test", "admin"};
          e.payload =
              R"({"pad":")" + std::string(200 + rng() % 400, 'x') + "\"}";
        }
        auto r = store->Append(stream, ExpectedVersion::Any(), events);
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          _exit(1);
        }
        std::string lines;
        for (size_t i = 0; i < r->event_ids.size(); ++i) {
          lines += r->event_ids[i].ToString() + " " +
                   std::to_string(r->first_position.value() + i) + " " +
                   stream + " " + std::to_string(r->first_version.value() + i) +
                   "\n";
        }
        if (write(STDOUT_FILENO, lines.data(), lines.size()) !=
            static_cast<ssize_t>(lines.size())) {
          _exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return 0;
}

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "caseledger/event_store.h"

namespace caseledger {
namespace {

namespace fs = std::filesystem;

// fsync of a file or a directory, so the copy survives a power cut once
// restored.
Status SyncPath(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError("cannot open " + path.string());
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::OK() : Status::IOError("cannot sync " + path.string());
}

Status CopyTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec)
    return Status::IOError("cannot create " + to.string() + ": " +
                           ec.message());
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    const fs::path target = to / entry.path().filename();
    if (entry.is_directory()) {
      RETURN_IF_ERROR(CopyTree(entry.path(), target));
      continue;
    }
    if (!entry.is_regular_file()) continue;
    fs::copy_file(entry.path(), target, ec);
    if (ec) {
      return Status::IOError("cannot copy " + entry.path().string() + ": " +
                             ec.message());
    }
    RETURN_IF_ERROR(SyncPath(target));
  }
  if (ec)
    return Status::IOError("cannot read " + from.string() + ": " +
                           ec.message());
  return SyncPath(to);
}

}  // namespace

StatusOr<GlobalPosition> RestoreBackup(const std::string& backup,
                                       const std::string& dir,
                                       const Options& options) {
  std::error_code ec;
  if (!fs::is_directory(backup, ec)) {
    return Status::NotFound("no backup at " + backup);
  }
  fs::path target = fs::absolute(dir, ec);
  while (!target.has_filename() && target.has_parent_path() &&
         target != target.parent_path()) {
    target = target.parent_path();  // "data/" -> "data"
  }
  if (fs::exists(target, ec) && !fs::is_empty(target, ec)) {
    return Status::AlreadyExists(
        target.string() +
        " is not empty: restore into a new directory (move the old store "
        "aside first; a restore never overwrites one)");
  }
  const fs::path staging =
      target.parent_path() / ("." + target.filename().string() + ".restoring-" +
                              std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  auto cleanup = [&] { fs::remove_all(staging, ec); };
  Status copied = CopyTree(backup, staging);
  if (!copied.ok()) {
    cleanup();
    return copied;
  }
  GlobalPosition head;
  {
    Options ro = options;
    ro.read_only = true;
    ro.create_if_missing = false;
    std::unique_ptr<EventStore> store;
    Status opened = EventStore::Open(ro, staging.string(), &store);
    if (!opened.ok()) {
      cleanup();
      return Status::Corruption(
          "the backup at " + backup +
          " does not open as a store: " + opened.ToString());
    }
    auto report = store->Verify(std::nullopt);
    if (!report.ok()) {
      cleanup();
      return report.status();
    }
    if (!report->ok) {
      const auto& b = *report->first_broken;
      cleanup();
      return Status::Corruption(
          "the backup at " + backup + " does not verify: broken at position " +
          std::to_string(b.position.value()) + ": " + b.reason);
    }
    head = store->Head().position;
  }
  if (fs::exists(target, ec)) fs::remove(target, ec);  // empty, checked above
  fs::rename(staging, target, ec);
  if (ec) {
    cleanup();
    return Status::IOError("cannot move the restored store to " +
                           target.string() + ": " + ec.message());
  }
  RETURN_IF_ERROR(SyncPath(target.parent_path()));
  return head;
}

}  // namespace caseledger

#include "projections/src/rebuild/batch_writer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <queue>

#include "projections/src/layout.h"

namespace caseledger::projections::internal {

BatchWriter::BatchWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* index_cf,
                         rocksdb::ColumnFamilyHandle* stats_cf,
                         std::vector<rocksdb::ColumnFamilyHandle*> memtables,
                         rocksdb::Options index_options,
                         rocksdb::Options stats_options,
                         std::string file_prefix, size_t index_chunk,
                         size_t max_runs, Target documents, Target feed)
    : db_(db),
      index_cf_(index_cf),
      stats_cf_(stats_cf),
      memtables_(std::move(memtables)),
      index_options_(std::move(index_options)),
      stats_options_(std::move(stats_options)),
      file_prefix_(std::move(file_prefix)),
      index_chunk_(std::clamp<size_t>(index_chunk, 1, TableChunk::kMaxOps)),
      sample_every_(std::max<size_t>(1, index_chunk_ / kRunSamples)),
      max_runs_(std::max<size_t>(max_runs, 2)),
      documents_(std::move(documents)),
      feed_(std::move(feed)),
      thread_([this] { Run(); }),
      index_thread_([this] { RunIndex(); }) {}

BatchWriter::~BatchWriter() {
  chunks_.Close();
  {
    MutexLock lk(&mu_);
    closed_ = true;
  }
  cv_.SignalAll();
  thread_.join();
  index_thread_.join();
  RemoveRuns();  // those of a rebuild that failed
}

Status BatchWriter::Write(rocksdb::WriteBatch wb,
                          std::vector<std::pair<uint64_t, std::string>> feed,
                          FoldedBatch made_from) {
  Item item;
  item.wb = std::move(wb);
  if (gathering_.size() >= index_chunk_) {
    item.index = std::move(gathering_);
    gathering_ = Spare();
  }
  item.feed = std::move(feed);
  item.made_from = std::move(made_from);
  return Queue(std::move(item));
}

Status BatchWriter::WriteStats(TableChunk stats) {
  Item item;
  item.stats = std::move(stats);
  return Queue(std::move(item));
}

Status BatchWriter::Drain() {
  MutexLock lk(&mu_);
  while ((!q_.empty() || busy_) && failed_.ok()) cv_.Wait(&mu_);
  return failed_;
}

Status BatchWriter::EndBatches() {
  Item last;
  last.index = std::move(gathering_);
  last.finish = true;
  return Queue(std::move(last));
}

Status BatchWriter::Finish() {
  MutexLock lk(&mu_);
  while ((!q_.empty() || busy_ || !index_done_) && failed_.ok()) cv_.Wait(&mu_);
  return failed_;
}

Status BatchWriter::Queue(Item item) {
  MutexLock lk(&mu_);
  while (q_.size() >= kAhead && failed_.ok()) cv_.Wait(&mu_);
  if (!failed_.ok()) return failed_;
  q_.push_back(std::move(item));
  lk.Unlock();
  cv_.SignalAll();
  return Status::OK();
}

void BatchWriter::Fail(const Status& s) {
  {
    MutexLock lk(&mu_);
    if (failed_.ok()) failed_ = s;
  }
  cv_.SignalAll();
}

void BatchWriter::Run() {
  rocksdb::WriteOptions options;
  options.disableWAL = true;
  for (;;) {
    std::optional<Item> item;
    bool write = false;
    {
      MutexLock lk(&mu_);
      while (!closed_ && q_.empty()) cv_.Wait(&mu_);
      if (q_.empty()) return;
      item.emplace(std::move(q_.front()));
      q_.pop_front();
      busy_ = true;
      write = failed_.ok();
    }
    Status s;
    if (write && !item->stats.empty()) {
      s = IngestChunk(stats_cf_, stats_options_, "learning statistics",
                      item->stats);
    } else if (write) {
      s = FromRocks(db_->Write(options, &item->wb), "applying");
      if (s.ok()) s = WriteFeed(item->feed);
      if (s.ok()) s = WriteDocuments(item->made_from);
      if (s.ok() && item->finish) s = FinishTables();
      if (s.ok() && item->finish) {
        // The last batch is in: the memtables start to flush now, not
        // after the last table files are in.
        rocksdb::FlushOptions flush;
        flush.wait = false;
        s = FromRocks(db_->Flush(flush, memtables_), "flushing");
      }
      // A full chunk of index operations, and the last (then an empty
      // chunk says there are no more), to the index thread.
      if (s.ok() && !item->index.empty() &&
          !chunks_.Push(std::move(item->index))) {
        s = Status::Unavailable("the index writer stopped");
      }
      if (s.ok() && item->finish && !chunks_.Push(TableChunk())) {
        s = Status::Unavailable("the index writer stopped");
      }
    }
    item.reset();
    {
      MutexLock lk(&mu_);
      busy_ = false;
      if (!s.ok() && failed_.ok()) failed_ = s;
    }
    cv_.SignalAll();
  }
}

TableChunk BatchWriter::Spare() {
  MutexLock lk(&mu_);
  TableChunk chunk = std::move(spare_);
  spare_ = TableChunk();
  return chunk;
}

void BatchWriter::RunIndex() {
  for (;;) {
    std::optional<TableChunk> chunk = chunks_.Pop();
    if (!chunk) return;  // abandoned
    Status s = chunk->empty() ? MergeRuns() : WriteRun(*chunk);
    if (!s.ok()) {
      Fail(s);
      return;
    }
    if (chunk->empty()) {
      {
        MutexLock lk(&mu_);
        index_done_ = true;
      }
      cv_.SignalAll();
      return;
    }
    chunk->Clear();
    MutexLock lk(&mu_);
    spare_ = std::move(*chunk);
  }
}

Status BatchWriter::WriteRun(TableChunk& chunk) {
  // Bounded: the runs are merged into one now and then.
  if (runs_.size() >= max_runs_) RETURN_IF_ERROR(MergeIntoRun());
  IndexRun run;
  run.path = file_prefix_ + std::to_string(++files_) + ".run";
  runs_.push_back(run);  // (so that a failure removes it)
  RunWriter out(run.path, sample_every_);
  if (!out.ok()) return Status::IOError("creating " + run.path);
  bool ok = true;
  chunk.ForEachLast([&](std::string_view key, bool put, std::string_view) {
    ok = out.Add(key, put);
    return ok;
  });
  if (!out.Close(&run) || !ok) return Status::IOError("writing " + run.path);
  runs_.back() = std::move(run);
  return Status::OK();
}

template <typename PutFn>
Status BatchWriter::MergeRange(const std::vector<RunRange>& ranges, PutFn put) {
  std::vector<std::unique_ptr<RunCursor>> cursors;
  for (size_t i = 0; i < runs_.size(); ++i) {
    const IndexRun& r = runs_[i];
    cursors.push_back(
        std::make_unique<RunCursor>(r, ranges[i].from, ranges[i].to, i));
    if (cursors.back()->failed()) {
      return Status::IOError("reading " + r.path);
    }
  }
  // Smallest key first; of equal keys, the latest run's first.
  auto later = [](const RunCursor* a, const RunCursor* b) {
    const int c = a->key().compare(b->key());
    return c != 0 ? c > 0 : a->index() < b->index();
  };
  std::priority_queue<RunCursor*, std::vector<RunCursor*>, decltype(later)>
      heap(later);
  for (auto& c : cursors) {
    if (c->Next()) heap.push(c.get());
  }
  std::string key;
  while (!heap.empty()) {
    RunCursor* top = heap.top();
    heap.pop();
    key = top->key();
    const bool puts = top->put();
    if (top->Next()) heap.push(top);
    while (!heap.empty() && heap.top()->key() == key) {
      RunCursor* same = heap.top();
      heap.pop();
      if (same->Next()) heap.push(same);
    }
    if (puts) RETURN_IF_ERROR(put(key));
  }
  for (auto& c : cursors) {
    if (c->failed()) return Status::IOError("reading index runs");
  }
  return Status::OK();
}

Status BatchWriter::MergeIntoTable(const std::vector<RunRange>& ranges,
                                   std::string* path) {
  rocksdb::SstFileWriter file(rocksdb::EnvOptions(), index_options_, index_cf_);
  bool open = false;
  auto put = [&](const std::string& key) -> Status {
    if (!open) {
      *path = file_prefix_ + std::to_string(++files_) + ".sst";
      rocksdb::Status os = file.Open(*path);
      if (!os.ok()) return FromRocks(os, "writing index entries");
      open = true;
    }
    return FromRocks(file.Put(key, ""), "writing index entries");
  };
  RETURN_IF_ERROR(MergeRange(ranges, put));
  if (open) {
    RETURN_IF_ERROR(FromRocks(file.Finish(), "writing index entries"));
  }
  return Status::OK();
}

Status BatchWriter::MergeIntoRun() {
  IndexRun run;
  run.path = file_prefix_ + std::to_string(++files_) + ".run";
  RunWriter out(run.path, sample_every_);
  if (!out.ok()) return Status::IOError("creating " + run.path);
  std::vector<RunRange> whole;
  for (const IndexRun& r : runs_) whole.push_back(RunRange{0, r.size});
  RETURN_IF_ERROR(MergeRange(whole, [&](const std::string& key) {
    return out.Add(key, true) ? Status::OK()
                              : Status::IOError("writing " + run.path);
  }));
  if (!out.Close(&run)) return Status::IOError("writing " + run.path);
  RemoveRuns();
  runs_.push_back(std::move(run));
  return Status::OK();
}

StatusOr<std::vector<uint64_t>> BatchWriter::SplitRuns() {
  std::vector<std::string_view> keys;
  for (const IndexRun& r : runs_) {
    for (const auto& [key, offset] : r.samples) keys.push_back(key);
  }
  std::vector<uint64_t> splits;
  if (keys.empty()) {  // no records at all
    splits.assign(runs_.size(), 0);
    return splits;
  }
  auto mid = keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 2);
  std::nth_element(keys.begin(), mid, keys.end());
  const std::string split_key(*mid);
  for (size_t i = 0; i < runs_.size(); ++i) {
    const IndexRun& r = runs_[i];
    // From the last sample before the key, the records up to the first
    // at or after it.
    auto after = std::lower_bound(r.samples.begin(), r.samples.end(), split_key,
                                  [](const auto& sample, const std::string& k) {
                                    return sample.first < k;
                                  });
    uint64_t at = after == r.samples.begin() ? 0 : std::prev(after)->second;
    const uint64_t to = after == r.samples.end() ? r.size : after->second;
    RunCursor c(r, at, to, i);
    while (c.Next() && c.key() < split_key) at += 5 + c.key().size();
    if (c.failed()) return Status::IOError("reading " + r.path);
    splits.push_back(at);
  }
  return splits;
}

Status BatchWriter::MergeRuns() {
  std::string first, second;
  StatusOr<std::vector<uint64_t>> splits = SplitRuns();
  Status s = splits.status();
  if (s.ok()) {
    std::vector<RunRange> low, high;
    for (size_t i = 0; i < runs_.size(); ++i) {
      low.push_back(RunRange{0, (*splits)[i]});
      high.push_back(RunRange{(*splits)[i], runs_[i].size});
    }
    Status other;
    std::thread helper([&] { other = MergeIntoTable(high, &second); });
    s = MergeIntoTable(low, &first);
    helper.join();
    if (s.ok()) s = other;
  }
  std::vector<std::string> paths;
  for (const std::string* p : {&first, &second}) {
    if (!p->empty()) paths.push_back(*p);
  }
  if (s.ok()) {
    s = IngestFiles(index_cf_, paths, "index entries");
  } else {
    for (const std::string& p : paths) std::remove(p.c_str());
  }
  RemoveRuns();
  return s;
}

void BatchWriter::RemoveRuns() {
  for (const IndexRun& r : runs_) std::remove(r.path.c_str());
  runs_.clear();
}

Status BatchWriter::Put(Ascending& a, std::string_view key,
                        std::string_view value) {
  if (!a.file) {
    a.path = file_prefix_ + std::to_string(++files_) + ".sst";
    a.file = std::make_unique<rocksdb::SstFileWriter>(
        rocksdb::EnvOptions(), a.target->options, a.target->cf);
    RETURN_IF_ERROR(
        FromRocks(a.file->Open(a.path), "writing " + a.target->what));
  }
  RETURN_IF_ERROR(
      FromRocks(a.file->Put(key, value), "writing " + a.target->what));
  a.last.assign(key);
  a.any = true;
  a.bytes += key.size() + value.size();
  if (a.bytes >= a.target->bytes_per_file) return Ingest(a);
  return Status::OK();
}

Status BatchWriter::Ingest(Ascending& a) {
  if (!a.file) return Status::OK();
  std::unique_ptr<rocksdb::SstFileWriter> file = std::move(a.file);
  a.bytes = 0;
  if (Status s = FromRocks(file->Finish(), "writing " + a.target->what);
      !s.ok()) {
    std::remove(a.path.c_str());
    return s;
  }
  return IngestFiles(a.target->cf, {a.path}, a.target->what);
}

Status BatchWriter::WriteFeed(
    const std::vector<std::pair<uint64_t, std::string>>& feed) {
  for (const auto& [seq, text] : feed) {
    const std::string key = Be64(seq);
    if (!feed_file_.Ascends(key)) {
      return Status::FailedPrecondition("feed record " + std::to_string(seq) +
                                        " comes after a later one");
    }
    RETURN_IF_ERROR(Put(feed_file_, key, text));
  }
  return Status::OK();
}

Status BatchWriter::WriteDocuments(const FoldedBatch& b) {
  for (const auto& [id, c] : b.cases) {
    if (documents_file_.Ascends(id)) {
      RETURN_IF_ERROR(Put(documents_file_, id, c.doc));
      continue;
    }
    aside_.Add(id, true, c.doc);
    if (aside_.value_bytes() >= documents_.bytes_per_file) {
      RETURN_IF_ERROR(WriteAside());
    }
  }
  return Status::OK();
}

Status BatchWriter::WriteAside() {
  if (aside_.empty()) return Status::OK();
  RETURN_IF_ERROR(Ingest(documents_file_));
  RETURN_IF_ERROR(
      IngestChunk(documents_.cf, documents_.options, documents_.what, aside_));
  aside_.Clear();
  return Status::OK();
}

Status BatchWriter::FinishTables() {
  RETURN_IF_ERROR(WriteAside());
  RETURN_IF_ERROR(Ingest(documents_file_));
  return Ingest(feed_file_);
}

Status BatchWriter::IngestChunk(rocksdb::ColumnFamilyHandle* cf,
                                const rocksdb::Options& options,
                                const std::string& what, TableChunk& chunk) {
  const std::string path = file_prefix_ + std::to_string(++files_) + ".sst";
  rocksdb::SstFileWriter file(rocksdb::EnvOptions(), options, cf);
  RETURN_IF_ERROR(FromRocks(file.Open(path), "writing " + what));
  rocksdb::Status ws;
  chunk.ForEachLast(
      [&](std::string_view key, bool put, std::string_view value) {
        ws = put ? file.Put(key, value) : file.Delete(key);
        return ws.ok();
      });
  if (ws.ok()) ws = file.Finish();
  if (!ws.ok()) {
    std::remove(path.c_str());
    return FromRocks(ws, "writing " + what);
  }
  return IngestFiles(cf, {path}, what);
}

Status BatchWriter::IngestFiles(rocksdb::ColumnFamilyHandle* cf,
                                const std::vector<std::string>& paths,
                                const std::string& what) {
  if (paths.empty()) return Status::OK();
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  Status s = FromRocks(db_->IngestExternalFile(cf, paths, ingest),
                       "ingesting " + what);
  for (const std::string& p : paths) std::remove(p.c_str());
  return s;
}

}  // namespace caseledger::projections::internal

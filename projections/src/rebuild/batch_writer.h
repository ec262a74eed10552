// A rebuild's writer (see below). Internal.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "caseledger/mutex.h"
#include "caseledger/status.h"
#include "projections/src/fold.h"
#include "projections/src/rebuild/handoff.h"
#include "projections/src/table_chunk.h"

namespace caseledger::projections::internal {

// A rebuild's writer: writes each batch the rebuild prepares on a thread of
// its own, in order, while the next one is prepared, and frees what the
// batch was made from there too. Without the WAL: the rebuild flushes its
// generation before swapping it in, and a crash before that leaves a
// generation that is never used (the next rebuild drops it). Stops writing
// at the first failure and reports it.
//
// The index entries (two thirds of a rebuild's writes; nothing reads them
// until the swap) skip the memtable: they are gathered (by the thread that
// prepares the batches, straight into the chunk handed on), a few hundred
// thousand at a time, and a thread of their own sorts them into a run file
// (the batches' writes go on meanwhile); at the end the runs are merged
// into the index (MergeRuns). The learning statistics, which the rebuild
// keeps in memory and hands over now and then (WriteStats), are written
// into table files and ingested.
//
// The documents and the feed's records skip the memtable too: the writer
// writes them into table files as they come, in key order (a feed record's
// key is its sequence number; cases mostly come in the order of their ids,
// which are ordered by time), so the files do not overlap and each is
// ingested into the last level, where nothing merges it again (rather than
// inserted into the memtable, flushed and compacted). A document that comes out
// of order (a case whose events span batches, written again) is gathered aside
// and written into a table file of its own, ingested after what it hides.
class BatchWriter {
 public:
  // A column family written in table files: where, with which options,
  // what (in errors), and how many bytes of values go into one file.
  struct Target {
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    rocksdb::Options options;
    std::string what;
    size_t bytes_per_file = 0;
  };

  // Gathers up to `index_chunk` index operations before it writes them.
  // Once the last batch is written, starts flushing `memtables` (the column
  // families batches write), while the last table files are written.
  BatchWriter(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* index_cf,
              rocksdb::ColumnFamilyHandle* stats_cf,
              std::vector<rocksdb::ColumnFamilyHandle*> memtables,
              rocksdb::Options index_options, rocksdb::Options stats_options,
              std::string file_prefix, size_t index_chunk, size_t max_runs,
              Target documents, Target feed);
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  // Where the thread that prepares the batches adds each batch's index
  // operations, before its Write (which hands them to the index thread
  // once there are enough for a run). That thread's only.
  TableChunk& IndexOps() { return gathering_; }

  // Queues `wb`, the feed records `feed` (by sequence number, ascending)
  // and the documents of `made_from`, waiting while a few are queued
  // already; the first failure, if any. (Called by the thread that
  // prepares the batches.)
  Status Write(rocksdb::WriteBatch wb,
               std::vector<std::pair<uint64_t, std::string>> feed,
               FoldedBatch made_from);

  // Queues operations on the stats column family (after every batch queued
  // before them): written into a table file and ingested.
  Status WriteStats(TableChunk stats);

  // Waits until every queued batch is written (so a read sees them); the
  // first failure, if any.
  Status Drain();

  // No batch comes after those queued: once they are written, the last
  // table files are written and the index's runs merged, while statistics
  // (WriteStats) may still come (making the last of them takes a while,
  // and the merge need not wait for it).
  Status EndBatches();

  // Writes everything queued, index entries included (after EndBatches);
  // the first failure, if any.
  Status Finish();

 private:
  static constexpr size_t kAhead = 4;
  struct Item {
    rocksdb::WriteBatch wb;
    TableChunk index;
    std::vector<std::pair<uint64_t, std::string>> feed;
    FoldedBatch made_from;
    TableChunk stats;
    bool finish = false;
  };

  Status Queue(Item item);

  void Fail(const Status& s);

  void Run();

  // An empty chunk to gather into: the last one written, emptied, if the
  // index thread is done with it (its buffers are as large as a chunk
  // needs: growing new ones again faulted in fresh pages every time).
  // (Called by the thread that prepares the batches.)
  TableChunk Spare();

  // The index thread: writes each chunk handed over, sorted (the last of
  // each key's operations), into a run file of its own; an empty chunk, the
  // last, has it merge the runs (MergeRuns).
  void RunIndex();

  // A sorted run of index operations, in a file of the rebuild's own: each
  // record is the key's length (4 bytes, little-endian), the key, and 1 if
  // it puts the key, 0 if it deletes it. Some of its records' keys and
  // offsets are kept (every sample_every_-th: a chunk's run is sampled at
  // most about kRunSamples times, fewer when it held a key more than once),
  // to split the runs where the last merge's two threads get about as many
  // records each (SplitRuns).
  static constexpr size_t kRunSamples = 128;
  struct IndexRun {
    std::string path;
    uint64_t size = 0;
    std::vector<std::pair<std::string, uint64_t>> samples;  // key, offset
  };
  // Where a merge reads each run: [from, to).
  struct RunRange {
    uint64_t from = 0;
    uint64_t to = 0;
  };

  // Writes a run's records (buffered), and samples them.
  class RunWriter {
   public:
    RunWriter(const std::string& path, uint64_t sample_every)
        : sample_every_(sample_every),
          buffer_(1u << 20),
          f_(std::fopen(path.c_str(), "wb"), &std::fclose) {
      if (f_) std::setvbuf(f_.get(), buffer_.data(), _IOFBF, buffer_.size());
    }
    bool ok() const { return f_ != nullptr; }
    bool Add(std::string_view key, bool put) {
      const uint32_t len = static_cast<uint32_t>(key.size());
      char head[4];
      std::memcpy(head, &len, 4);
      const char op = put ? 1 : 0;
      if (records_++ % sample_every_ == 0) samples_.emplace_back(key, size_);
      size_ += 5 + key.size();
      // (glibc's unlocked calls: the file is this thread's only; locking it
      // for each of a run's millions of writes was a sixth of the index
      // thread.)
      return fwrite_unlocked(head, 1, 4, f_.get()) == 4 &&
             fwrite_unlocked(key.data(), 1, key.size(), f_.get()) ==
                 key.size() &&
             fwrite_unlocked(&op, 1, 1, f_.get()) == 1;
    }
    uint64_t size() const { return size_; }
    // Closes the file; what was written, in `*run`.
    bool Close(IndexRun* run) {
      run->size = size_;
      run->samples = std::move(samples_);
      bool ok = std::fflush(f_.get()) == 0 && std::ferror(f_.get()) == 0;
      return std::fclose(f_.release()) == 0 && ok;
    }

   private:
    const uint64_t sample_every_;
    std::vector<char> buffer_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
    uint64_t size_ = 0;
    uint64_t records_ = 0;
    std::vector<std::pair<std::string, uint64_t>> samples_;
  };

  Status WriteRun(TableChunk& chunk);

  // Reads one run's records in [from, to).
  class RunCursor {
   public:
    RunCursor(const IndexRun& run, uint64_t from, uint64_t to, size_t index)
        : left_(to - from),
          index_(index),
          f_(std::fopen(run.path.c_str(), "rb"), &std::fclose) {
      if (!f_ || std::fseek(f_.get(), static_cast<long>(from), SEEK_SET) != 0) {
        failed_ = true;
        left_ = 0;
        return;
      }
      buffer_.resize(64u << 10);
      std::setvbuf(f_.get(), buffer_.data(), _IOFBF, buffer_.size());
    }
    // The next record: false at the end of its range (or on a failure).
    bool Next() {
      if (left_ == 0) return false;
      char head[4];
      uint32_t len = 0;
      // (Unlocked, as the writer's: the file is this thread's only.)
      if (fread_unlocked(head, 1, 4, f_.get()) != 4) return Failed();
      std::memcpy(&len, head, 4);
      if (left_ < 5 + uint64_t{len}) return Failed();
      key_.resize(len);
      char op = 0;
      if (fread_unlocked(key_.data(), 1, len, f_.get()) != len ||
          fread_unlocked(&op, 1, 1, f_.get()) != 1) {
        return Failed();
      }
      put_ = op != 0;
      left_ -= 5 + uint64_t{len};
      return true;
    }
    const std::string& key() const { return key_; }
    bool put() const { return put_; }
    size_t index() const { return index_; }  // later runs hide earlier ones
    bool failed() const { return failed_; }

   private:
    bool Failed() {
      failed_ = true;
      left_ = 0;
      return false;
    }
    uint64_t left_;
    size_t index_;
    std::vector<char> buffer_;
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f_;
    std::string key_;
    bool put_ = false;
    bool failed_ = false;
  };

  // Calls put(key) for each key the runs leave put, in order: the runs'
  // records in `ranges` (one per run), the last operation on each key
  // counting. (A key whose last operation deletes it is left out: a rebuild
  // starts from nothing.)
  template <typename PutFn>
  Status MergeRange(const std::vector<RunRange>& ranges, PutFn put);

  // The merge of `ranges` into a table file of the index (its path in
  // `*path`, left empty if no key is put).
  Status MergeIntoTable(const std::vector<RunRange>& ranges, std::string* path);

  // Merges the runs so far into one (a long log would otherwise hold a
  // file open per run for each half of the last merge).
  Status MergeIntoRun();

  // Where each run's keys from the median of its samples' keys begin (the
  // median of all records' keys to within sample_every_ records a run; each
  // split itself is exact), so that the two halves of the last merge take
  // about as long: the first half is each run's records before its split,
  // the second the rest.
  StatusOr<std::vector<uint64_t>> SplitRuns();

  // The runs (each sorted, each spanning the whole key range) merged into
  // table files that do not overlap, on two threads (one key range each),
  // and ingested into the last level: nothing merges them again.
  // (Ingested as they came, the runs' files overlapped in level 0, and
  // RocksDB merged them after the swap on one thread: 0.3-0.5 s on a
  // million events.)
  Status MergeRuns();

  void RemoveRuns();

  // A table file written as its keys come, each greater than every key
  // before it (in this file and the ones before), and ingested once it
  // holds its target's bytes, or at the end. (Writer thread only.)
  struct Ascending {
    explicit Ascending(const Target* t) : target(t) {}
    const Target* target;
    std::unique_ptr<rocksdb::SstFileWriter> file;  // open, or null
    std::string path;
    size_t bytes = 0;  // in the open file
    std::string last;  // the greatest key put
    bool any = false;  // whether a key was put
    bool Ascends(std::string_view key) const { return !any || key > last; }
  };

  Status Put(Ascending& a, std::string_view key, std::string_view value);

  // Finishes the open file, if any, and ingests it.
  Status Ingest(Ascending& a);

  Status WriteFeed(const std::vector<std::pair<uint64_t, std::string>>& feed);

  // A batch's documents: in order, or aside (out of order).
  Status WriteDocuments(const FoldedBatch& b);

  // The documents gathered aside, in a table file ingested after every
  // document written before them (so that they hide those of their keys).
  Status WriteAside();

  Status FinishTables();

  // Writes a table file of `cf`, the last of the chunk's operations on each
  // key, and ingests it: it hides what the column family held of its keys.
  Status IngestChunk(rocksdb::ColumnFamilyHandle* cf,
                     const rocksdb::Options& options, const std::string& what,
                     TableChunk& chunk);

  // Ingests the table files at `paths` into `cf` (moved in, so they hide
  // what it held of their keys), then removes them (what was moved in is
  // linked there; on a failure, nothing is used).
  Status IngestFiles(rocksdb::ColumnFamilyHandle* cf,
                     const std::vector<std::string>& paths,
                     const std::string& what);

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const index_cf_;
  rocksdb::ColumnFamilyHandle* const stats_cf_;
  const std::vector<rocksdb::ColumnFamilyHandle*> memtables_;
  const rocksdb::Options index_options_;  // of its table files
  std::vector<IndexRun> runs_;  // the index thread's: the runs written
  const rocksdb::Options stats_options_;
  const std::string file_prefix_;
  const size_t index_chunk_;
  const uint64_t sample_every_;  // a run's records per sample
  const size_t max_runs_;  // runs kept apart before they are merged into one
  const Target documents_;
  const Target feed_;
  // The writer thread's.
  Ascending documents_file_{&documents_};
  Ascending feed_file_{&feed_};
  TableChunk aside_;  // documents out of order
  Mutex mu_;
  CondVar cv_;  // waits on mu_
  std::deque<Item> q_ GUARDED_BY(mu_);
  bool busy_ GUARDED_BY(mu_) = false;  // writing one
  bool closed_ GUARDED_BY(mu_) = false;
  bool index_done_ GUARDED_BY(mu_) = false;  // the last chunk is in
  TableChunk spare_ GUARDED_BY(mu_);
  // Index operations gathered for the next run (the preparing thread's).
  TableChunk gathering_;
  Status failed_ GUARDED_BY(mu_);
  std::atomic<uint64_t> files_{0};  // table files written (both threads)
  // Full chunks of index operations, from the writer thread to the index
  // thread: one waits while the one before is written.
  Handoff<TableChunk> chunks_{1};
  std::thread thread_;  // last: they start once the rest exists
  std::thread index_thread_;
};

}  // namespace caseledger::projections::internal

// The job's output directory: file names, what psaq recognises as its own, and the start-of-job
// checks (launch/job/quantize_job.h).
//
// Ownership. A job owns its output directory for its whole life: rank 0 holds the directory's
// lock (launch/job/output_dir_lock.h), so a second job on the same directory is refused at once
// with one line naming the holder, and a lock left by a killed job is reported and taken over.
//
// psaq's own entries, recognised by exact name and, for the finished files, by content:
//   .psaq.lock                                    the lock (never removed by overwrite)
//   report.json                                   a JSON object with "status" and "psaq_version"
//   model.safetensors, model.manifest.json        "format" "psaq_quantized" (metadata / field)
//   samples/                                      a directory holding only
//     shard-<r>-of-<n>.safetensors                  metadata "format" "psaq_samples"
//   checkpoint/                                   a directory holding only (checkpoint.h)
//     state.json                                    "format" "psaq_checkpoint"
//     step-<k>/rank-<r>.safetensors, step-<k>/shared.safetensors, blobs/v1-batch-<i>.safetensors
//                                                   metadata "format" "psaq_checkpoint"
//   and the temporaries of every file above, "<name>.tmp.<pid>" (a killed writer leaves them).
// Everything else (a user's samples/mydata/, checkpoint/important.db, a report.json psaq did not
// write, a symbolic link, a FIFO) is foreign: psaq never deletes or replaces it.
#pragma once

#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "launch/job/output_dir_lock.h"

namespace psaq::job {

std::string SamplesDir(const std::string& output_dir);     // <dir>/samples
std::string CheckpointDir(const std::string& output_dir);  // <dir>/checkpoint
std::string ModelPath(const std::string& output_dir);      // <dir>/model.safetensors
std::string ReportPath(const std::string& output_dir);     // <dir>/report.json

// True when <dir>/report.json exists and says "status": "complete".
bool IsFinishedRun(const std::string& output_dir);

// An entry of an output directory that psaq did not write.
struct ForeignEntry {
  std::string path;    // relative to the directory; a directory ends in '/'
  std::string reason;  // "" (a name psaq does not use) or why psaq's name is not psaq's file
  // The entry has a name psaq writes (report.json, model.*, a shard, a checkpoint file, samples/,
  // checkpoint/) but is not psaq's: a run would replace it.
  bool psaq_name = false;
};

// What an output directory holds, entry by entry (nothing when it does not exist).
struct OutputDirContents {
  // psaq's entries, relative, every directory after its contents (the order to delete them in).
  // The lock is not listed.
  std::vector<std::string> psaq;
  // The topmost foreign entries (a foreign directory is listed, not its contents), sorted.
  std::vector<ForeignEntry> foreign;
};

// Local; reads names and safetensors/JSON headers, never follows a symbolic link or opens
// anything but a regular file. Throws std::runtime_error naming the directory when it cannot be
// listed.
OutputDirContents ScanOutputDir(const std::string& output_dir);

// The proper ancestor of `output_dir` (resolved: absolute, symbolic links followed) that is a psaq
// run directory (it holds .psaq.lock, a psaq report.json or a psaq checkpoint/state.json), or ""
// when there is none; `marker` (optional) receives what marks it. Local.
std::string EnclosingRun(const std::string& output_dir, std::string* marker = nullptr);

// Removes psaq's entries under <dir>/checkpoint (and the directory when that empties it), leaving
// anything foreign in place. Best effort (a finished run's checkpoint has served): never throws.
void RemoveCheckpoint(const std::string& output_dir);

// What PrepareOutputDir leaves the job.
struct PreparedOutputDir {
  bool has_checkpoint = false;  // a checkpoint is there to resume from
  bool overwrite = false;       // ClearOutputDir removes the previous run
  // Rank 0: psaq's entries found (ScanOutputDir), for ClearOutputDir.
  std::vector<std::string> psaq_entries;
  // Rank 0: the directory's lock, held until this is destroyed (keep it for the whole job);
  // null on the other ranks.
  std::unique_ptr<OutputDirLock> lock;
};

// Collective; `device` is the job's (the MPI backend exchanges on the CPU, NCCL on it). In order,
// each refusal a std::runtime_error naming the directory and thrown on every rank before anything
// is changed:
//   1. the path exists and is not a directory; it lies inside another run's directory
//      (EnclosingRun: "... is inside the psaq run directory <run> (it holds <marker>)");
//   2. rank 0 creates it, checks it is writable and takes its lock (OutputDirLock: "in use by
//      another psaq job (...)"); a stale lock's warning is logged;
//   3. a finished run (report.json with status complete) unless `overwrite`; a checkpoint of an
//      unfinished run unless `resume` or `overwrite`;
//   4. foreign entries (ScanOutputDir): with `overwrite` any of them ("<dir>: holds entries psaq
//      did not write, which --overwrite does not delete: samples/mydata/, ..."), else those a run
//      would replace (psaq_name). At most 20 are named, then a count.
// Nothing in the directory is changed yet (the job validates the rest of its inputs first).
// `command` names this job in the lock (OutputDirLock).
PreparedOutputDir PrepareOutputDir(const std::string& output_dir, bool resume, bool overwrite,
                                   const std::string& command, dist::Communicator& comm,
                                   const c10::Device& device);

// Collective, after PrepareOutputDir and the job's own checks: rank 0 removes psaq's entries
// (except the lock) when `prepared.overwrite`, or an unfinished run's report.json otherwise.
// Throws std::runtime_error naming an entry that cannot be removed.
void ClearOutputDir(const std::string& output_dir, const PreparedOutputDir& prepared,
                    dist::Communicator& comm, const c10::Device& device);

}  // namespace psaq::job

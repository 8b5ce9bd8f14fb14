// The lock that makes one psaq job the owner of its output directory for the job's whole life
// (launch/job/output_dir.h takes it on rank 0; the other ranks of the job share it through rank 0).
//
// The lock is flock(2) (exclusive, non-blocking) on "<dir>/.psaq.lock". The file names its holder
// in four "key=value" lines, for the message a second job prints:
//   host=<hostname>  pid=<pid>  started=<UTC, ISO 8601>  command=<the holder's command line>
// The kernel drops a flock when its process ends, however it ends (an error, SIGKILL, a node's
// MPI_Abort), so a lock is never held by a dead job. Releasing (the destructor: every exit path
// that unwinds, preemption and errors included) removes the file while still holding it, then
// closes it; a job that was killed leaves the file behind, unlocked: the next job finds it, says
// so (warning()) and takes the lock over. A Slurm requeue or a `--resume` after a crash therefore
// starts as usual: the old processes are gone, and so is their lock.
//
// Limits: the lock is as good as the file system's flock. Local file systems, NFSv4 (where the
// client maps flock to byte-range locks across machines), GPFS and Lustre mounted with `flock`
// lock across nodes. Where flock is not supported (Lustre mounted without it, NFS with
// local_lock=all) the job runs without the guard and warning() says so. A lock held on an NFS
// client that crashed stays held until the server's lease expires (about 90 s).
#pragma once

#include <string>

namespace psaq::job {

class OutputDirLock {
 public:
  // Takes the lock of `dir`, which must exist, and records this process as its holder with
  // `command` (newlines become spaces; "" is fine). Throws std::runtime_error:
  //   - "<dir>: in use by another psaq job (host H, pid P, started T: COMMAND); wait for it to
  //     end or choose another output directory" when a live process holds the lock;
  //   - "<dir>/.psaq.lock: cannot ...: <errno text>" when the file cannot be opened or written.
  OutputDirLock(const std::string& dir, const std::string& command);
  // Releases the lock: removes the file, then closes it. Never throws.
  ~OutputDirLock();
  OutputDirLock(const OutputDirLock&) = delete;
  OutputDirLock& operator=(const OutputDirLock&) = delete;

  // One line for the caller to log as a warning, or "" when there is nothing to say:
  //   - "<dir>/.psaq.lock: taking over the lock of a psaq job that ended without releasing it
  //     (host H, pid P, started T: COMMAND)" (a killed job);
  //   - "<dir>/.psaq.lock: the file system does not support flock (<errno text>): running
  //     without the guard against a second job in this directory".
  const std::string& warning() const { return warning_; }

  // "<dir>/.psaq.lock".
  static std::string Path(const std::string& dir);

 private:
  std::string path_;
  int fd_ = -1;
  std::string warning_;
};

}  // namespace psaq::job

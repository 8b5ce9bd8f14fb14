#include "launch/job/output_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include "dist/base/utc_time.h"

namespace psaq::job {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& what, int err) {
  throw std::runtime_error(path + ": cannot " + what + ": " + std::strerror(err));
}

// The whole file from offset 0 (the lock file is a few hundred bytes; read errors give "").
std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  for (off_t at = 0; text.size() < (1u << 20);) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

// "host H, pid P, started T: COMMAND" from the file's key=value lines.
std::string DescribeHolder(const std::string& text) {
  std::map<std::string, std::string> fields;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos) fields[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (fields.empty()) return "it has not recorded itself yet";
  const auto get = [&](const char* key) {
    auto it = fields.find(key);
    return it == fields.end() || it->second.empty() ? std::string("?") : it->second;
  };
  return "host " + get("host") + ", pid " + get("pid") + ", started " + get("started") + ": " +
         get("command");
}

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

}  // namespace

std::string OutputDirLock::Path(const std::string& dir) {
  return (std::filesystem::path(dir) / ".psaq.lock").string();
}

OutputDirLock::OutputDirLock(const std::string& dir, const std::string& command)
    : path_(Path(dir)) {
  bool locked = false;
  // A releasing holder removes the file while it still holds it: when we locked a file that is no
  // longer the one at path_ (its holder released it between our open and our flock), the lock is
  // worth nothing, so try again on the new file. Each round means another job came and went.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail(path_, "open the output directory's lock", errno);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        const std::string holder = DescribeHolder(ReadAll(fd_));
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error(dir + ": in use by another psaq job (" + holder +
                                 "); wait for it to end or choose another output directory");
      }
      // ENOLCK, EOPNOTSUPP, ENOSYS, EINVAL: no flock here. Run unguarded rather than not at all.
      warning_ = path_ + ": the file system does not support flock (" + std::strerror(err) +
                 "): running without the guard against a second job in this directory";
      break;
    }
    struct stat mine {};
    struct stat there {};
    if (::fstat(fd_, &mine) == 0 && ::stat(path_.c_str(), &there) == 0 &&
        mine.st_dev == there.st_dev && mine.st_ino == there.st_ino) {
      locked = true;
      break;
    }
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) {
    throw std::runtime_error(path_ + ": cannot take the lock: other jobs kept replacing it");
  }
  // Content left by a holder that never released the lock: that job was killed.
  const std::string previous = ReadAll(fd_);
  if (locked && previous.find('=') != std::string::npos) {
    warning_ = path_ + ": taking over the lock of a psaq job that ended without releasing it (" +
               DescribeHolder(previous) + ")";
  }
  const std::string me = "host=" + HostName() + "\npid=" + std::to_string(::getpid()) +
                         "\nstarted=" + base::UtcNow() + "\ncommand=" + OneLine(command) + "\n";
  // Written in place, not through base::AtomicFile: a rename would put a new, unlocked file at
  // the path. Readers only quote it in messages, so a torn read costs a word, not correctness.
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int err = errno;
    ::unlink(path_.c_str());
    ::close(fd_);
    fd_ = -1;
    Fail(path_, "write the output directory's lock", err);
  }
}

OutputDirLock::~OutputDirLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding it: see the retry in the constructor
  ::close(fd_);
}

}  // namespace psaq::job

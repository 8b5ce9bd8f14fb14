#include "dist/base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace psaq::base {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw std::runtime_error(path + ": " + why);
}

std::string TempPath(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

// A rename is durable only once the directory entry is on disk. Best effort: some file systems
// refuse fsync on a directory, and the data itself is already synced.
void FsyncParentDir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty()) parent = ".";
  const int fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(TempPath(path_)) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) Fail(path_, "cannot create '" + tmp_ + "': " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::Append(const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // write() returning 0 for a non-empty buffer means no space was made: report ENOSPC.
      Fail(path_, std::string("write failed: ") + std::strerror(n < 0 ? errno : ENOSPC));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::Commit() {
  // A full disk may surface only here (delayed allocation), so both results are checked.
  const bool synced = ::fsync(fd_) == 0;
  const int sync_errno = errno;
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 || !synced) {
    Fail(path_, std::string("write failed: ") + std::strerror(synced ? errno : sync_errno));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    Fail(path_, "cannot rename '" + tmp_ + "' into place: " + std::strerror(errno));
  }
  committed_ = true;
  FsyncParentDir(path_);
}

void WriteFileAtomic(const std::string& path, const std::string& text) {
  AtomicFile out(path);
  out.Append(text.data(), text.size());
  out.Commit();
}

void CheckWritable(const std::string& flag, const std::string& path) {
  const std::string tmp = TempPath(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(flag + "=" + path + ": cannot write there: " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(tmp.c_str());
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail(path, "cannot open for reading");
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) Fail(path, "read failed");
  return out.str();
}

void MakeDirs(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) Fail(dir, "cannot create directory: " + ec.message());
  if (!std::filesystem::is_directory(dir)) Fail(dir, "exists and is not a directory");
}

}  // namespace psaq::base

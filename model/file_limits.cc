#include "model/file_limits.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace psaq::model {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& reason) {
  throw std::runtime_error(path + ": " + reason);
}

const char* FileKind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

void CheckRegular(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode)) {
    Fail(path, std::string("not a regular file (") + FileKind(st.st_mode) +
                   "); psaq reads model files only from regular files");
  }
}

}  // namespace

JsonShape ScanJson(std::string_view text, int depth_limit) {
  JsonShape shape;
  int depth = 0;
  bool in_string = false;
  bool top_is_object = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // skip the escaped character (a quote in particular)
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        if (depth == 0) top_is_object = c == '{';
        if (++depth > shape.max_depth) shape.max_depth = depth;
        if (depth > depth_limit) {
          shape.too_deep = true;
          return shape;
        }
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        break;
      case ':':
        if (depth == 1 && top_is_object) ++shape.top_members;
        break;
      default:
        break;
    }
  }
  return shape;
}

void CheckJsonDepth(std::string_view text, const std::string& what) {
  if (ScanJson(text).too_deep) {
    throw std::runtime_error(what + ": JSON nests deeper than " + std::to_string(kMaxJsonDepth) +
                             " levels (psaq's limit)");
  }
}

int OpenRegularFile(const std::string& path) {
  // stat first, so a FIFO or a device is refused without even opening it; then open without
  // blocking (a FIFO swapped in meanwhile would block the open) and check the opened file itself.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    Fail(path, std::string("cannot open for reading: ") + std::strerror(errno));
  }
  CheckRegular(st, path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open for reading: ") + std::strerror(errno));
  try {
    if (::fstat(fd, &st) != 0) Fail(path, std::string("cannot stat: ") + std::strerror(errno));
    CheckRegular(st, path);
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      Fail(path, std::string("cannot set blocking mode: ") + std::strerror(errno));
    }
  } catch (...) {
    ::close(fd);
    throw;
  }
  return fd;
}

std::string ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  const int fd = OpenRegularFile(path);
  std::string text;
  try {
    struct stat st;
    if (::fstat(fd, &st) != 0) Fail(path, std::string("cannot stat: ") + std::strerror(errno));
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size > max_bytes) {
      Fail(path, std::to_string(size) + " bytes exceeds the " + std::to_string(max_bytes) +
                     "-byte limit");
    }
    text.resize(size);
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::read(fd, text.data() + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) Fail(path, std::string("read failed: ") + std::strerror(errno));
      if (n == 0) break;  // shrank meanwhile: keep what is there
      done += static_cast<size_t>(n);
    }
    text.resize(done);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return text;
}

}  // namespace psaq::model

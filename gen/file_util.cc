#include "gen/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace psaq::gen {
namespace {

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw std::runtime_error(path + ": " + why);
}

void FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return;  // best effort for directories on file systems that refuse it
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void WriteFileAtomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr)
      Fail(path, std::string("cannot create a temporary file: ") + std::strerror(errno));
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size() &&
                    std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const int saved = errno;
    if (std::fclose(f) != 0 || !ok) {
      std::remove(tmp.c_str());
      Fail(path, std::string("write failed: ") + std::strerror(saved));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    std::remove(tmp.c_str());
    Fail(path, std::string("cannot rename the temporary file into place: ") + std::strerror(saved));
  }
  const std::string parent = std::filesystem::path(path).parent_path().string();
  FsyncPath(parent.empty() ? "." : parent, O_RDONLY | O_DIRECTORY);
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

}  // namespace psaq::gen

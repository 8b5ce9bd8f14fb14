#include "tests/fuzz/fuzz_util.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdexcept>

namespace psaq::fuzz {
namespace {

void RemoveScratch() {
  std::error_code ec;
  std::filesystem::remove_all(ScratchDir(), ec);
}

}  // namespace

const std::string& ScratchDir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/psaq_fuzz_" + std::to_string(::getpid()) + "_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::fprintf(stderr, "psaq fuzz: cannot create %s: %s\n", pattern.c_str(),
                   std::strerror(errno));
      std::abort();
    }
    return pattern;
  }();
  static const bool registered = (std::atexit(&RemoveScratch) == 0);
  (void)registered;
  return dir;
}

std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/" + name;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (size_t done = 0; ok && done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<size_t>(n);
  }
  if (fd >= 0 && ::close(fd) != 0) ok = false;
  if (!ok) {
    std::fprintf(stderr, "psaq fuzz: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
    std::abort();
  }
  return path;
}

void Fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "psaq fuzz %s: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

bool Parses(const char* target, const std::function<void()>& parse) {
  try {
    parse();
    return true;
  } catch (const std::bad_alloc& e) {
    Fail(target, std::string("unnamed std::bad_alloc escaped the parser (") + e.what() + ")");
  } catch (const c10::Error& e) {
    // c10's CPU allocator throws this when an allocation sized by the input fails.
    const std::string what = e.what_without_backtrace();
    if (what.find("can't allocate memory") != std::string::npos) {
      Fail(target, "allocation sized by the input failed instead of being refused: " + what);
    }
  } catch (const std::exception&) {
    // The clean error path.
  } catch (...) {
    Fail(target, "an exception not derived from std::exception escaped the parser");
  }
  return false;
}

void SetUpProcess() {
  static const bool done = [] {
    at::set_num_threads(1);
    return true;
  }();
  (void)done;
}

}  // namespace psaq::fuzz

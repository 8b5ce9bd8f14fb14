// A scratch directory for tests that write files, removed (with its contents) on destruction.
// The one temp-dir helper of every test folder.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

namespace psaq::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("psaq_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Path of `relative` inside the directory, as a string: `dir / "run"` or `dir.Sub("run")`.
  std::string operator/(const std::string& relative) const { return Sub(relative); }
  std::string Sub(const std::string& relative) const { return (path_ / relative).string(); }
  // Writes `bytes` to `relative`, creating parent directories; returns the full path.
  std::string Write(const std::string& relative, const std::string& bytes) const {
    const std::filesystem::path p = path_ / relative;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace psaq::testing

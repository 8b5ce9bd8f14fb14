#include "launch/flagfiles.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "dist/base/format.h"

namespace psaq::launch {
namespace {

// gflags' ParseFlagList: the items of a comma-separated list, in order. Items gflags refuses
// itself (empty, or starting with '-': it exits with its own message before reading any file of
// the list) are dropped here.
std::vector<std::string> FlagfileList(const std::string& value) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start < value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string::npos) end = value.size();
    const std::string item = value.substr(start, end - start);
    if (!item.empty() && item[0] != '-') items.push_back(item);
    start = end + 1;
  }
  return items;
}

// The value of --flagfile in one argument or flagfile line without its leading dashes
// ("flagfile=a.txt" -> "a.txt"); `*is_flagfile` false for other flags. --fromenv/--tryfromenv
// naming flagfile take the value gflags would take, $FLAGS_flagfile.
std::string FlagfileValue(const std::string& name_and_value, bool* is_flagfile) {
  const size_t eq = name_and_value.find('=');
  const std::string name = name_and_value.substr(0, eq);
  const std::string value = eq == std::string::npos ? "" : name_and_value.substr(eq + 1);
  *is_flagfile = false;
  if (name == "flagfile") {
    *is_flagfile = eq != std::string::npos;
    return value;
  }
  if (name == "fromenv" || name == "tryfromenv") {
    for (const std::string& item : FlagfileList(value)) {
      const char* env = std::getenv("FLAGS_flagfile");
      if (item == "flagfile" && env != nullptr) {
        *is_flagfile = true;
        return env;
      }
    }
  }
  return "";
}

class FlagfileChecker {
 public:
  explicit FlagfileChecker(const FlagfileLimits& limits) : limits_(limits) {}

  // Checks the flagfiles of one --flagfile value at depth chain_.size() + 1; "" or the reason.
  std::string CheckValue(const std::string& value) {
    for (const std::string& path : FlagfileList(value)) {
      std::string error = CheckFile(path);
      if (!error.empty()) return error;
    }
    return "";
  }

 private:
  struct Link {
    std::string path;  // as written
    std::string key;   // canonical, for the cycle check
  };

  std::string Fail(const std::string& path, const std::string& reason) const {
    std::string where = "--flagfile=" + path;
    if (!chain_.empty()) where += ", in " + chain_.back().path;
    return where + ": " + reason;
  }

  std::string CheckFile(const std::string& path) {
    if (++reads_ > limits_.max_reads) {
      return Fail(path, "more than " + std::to_string(limits_.max_reads) +
                            " flagfiles to read in all (a file included several times counts "
                            "each time)");
    }
    if (static_cast<int>(chain_.size()) >= limits_.max_depth) {
      return Fail(path, "flagfiles nested more than " + std::to_string(limits_.max_depth) +
                            " deep (" + Chain(path) + ")");
    }
    std::string content;
    std::string error = Read(path, &content);
    if (!error.empty()) return Fail(path, error);
    std::error_code ec;
    std::string key = std::filesystem::canonical(path, ec).string();
    if (ec) key = path;
    for (const Link& link : chain_) {
      if (link.key == key) return Fail(path, "includes itself (" + Chain(path) + ")");
    }
    chain_.push_back({path, key});
    error = CheckContent(content);
    chain_.pop_back();
    return error;
  }

  // "a.txt -> b.txt -> <path>".
  std::string Chain(const std::string& path) const {
    std::string text;
    for (const Link& link : chain_) text += link.path + " -> ";
    return text + path;
  }

  // The file's bytes, without blocking (O_NONBLOCK: a FIFO is refused, not waited on) and without
  // reading more than max_bytes + 1 of them; "" or the reason.
  std::string Read(const std::string& path, std::string* content) const {
    const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return std::string("cannot open: ") + std::strerror(errno);
    struct stat st {};
    std::string error;
    if (fstat(fd, &st) != 0) {
      error = std::string("cannot stat: ") + std::strerror(errno);
    } else if (!S_ISREG(st.st_mode)) {
      error = "not a regular file";
    } else if (st.st_size > limits_.max_bytes) {
      error = TooLarge(st.st_size);
    }
    char buf[8192];
    while (error.empty()) {
      const ssize_t got = read(fd, buf, sizeof(buf));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) error = std::string("read error: ") + std::strerror(errno);
      if (got <= 0) break;
      content->append(buf, static_cast<size_t>(got));
      if (static_cast<int64_t>(content->size()) > limits_.max_bytes) {
        error = TooLarge(static_cast<int64_t>(content->size()));  // it grew since fstat
      }
    }
    close(fd);
    return error;
  }

  std::string TooLarge(int64_t bytes) const {
    return base::FormatBytes(bytes) + ", more than the " + base::FormatBytes(limits_.max_bytes) +
           " a flagfile may hold";
  }

  // gflags' ProcessOptionsFromStringLocked, reduced to the --flagfile lines: the content ends at
  // its first NUL; leading white space (blank lines included) is skipped; a line ends at the
  // first '\r' of the rest, or else at its first '\n'; "-name=value" and "--name=value" lines are
  // flags.
  std::string CheckContent(const std::string& data) {
    const char* p = data.c_str();
    const char* line_end = p;
    // (The step moves past the line end only when there is one: nullptr + 1 is undefined.)
    for (; line_end != nullptr; p = line_end != nullptr ? line_end + 1 : p) {
      while (*p != '\0' && std::isspace(static_cast<unsigned char>(*p))) ++p;
      line_end = std::strchr(p, '\r');
      if (line_end == nullptr) line_end = std::strchr(p, '\n');
      const std::string line(
          p, line_end != nullptr ? static_cast<size_t>(line_end - p) : std::strlen(p));
      if (line.empty() || line[0] != '-') continue;  // blank, comment or program-name line
      const size_t dashes = line.size() > 1 && line[1] == '-' ? 2 : 1;
      bool is_flagfile = false;
      const std::string value = FlagfileValue(line.substr(dashes), &is_flagfile);
      if (!is_flagfile) continue;
      std::string error = CheckValue(value);
      if (!error.empty()) return error;
    }
    return "";
  }

  const FlagfileLimits limits_;
  std::vector<Link> chain_;  // the files being read, outermost first
  int reads_ = 0;
};

}  // namespace

std::string CheckFlagfiles(const std::vector<std::string>& args, const FlagfileLimits& limits) {
  FlagfileChecker checker(limits);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') continue;  // a positional argument
    const size_t dashes = arg[1] == '-' ? 2 : 1;
    if (arg.size() == dashes) break;  // "--": the end of the flags
    std::string body = arg.substr(dashes);
    // "--flagfile F": the next argument is the value, as gflags takes it.
    if (body == "flagfile" && i + 1 < args.size()) body += "=" + args[++i];
    bool is_flagfile = false;
    const std::string value = FlagfileValue(body, &is_flagfile);
    if (!is_flagfile) continue;
    std::string error = checker.CheckValue(value);
    if (!error.empty()) return error;
  }
  return "";
}

}  // namespace psaq::launch

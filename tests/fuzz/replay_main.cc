// The main of a fuzz target's replay executable (<target>_fuzz_replay): runs the target's
// LLVMFuzzerTestOneInput once on every file given, without libFuzzer, so that any build (gcc,
// no sanitizer) replays the corpus and every regression input in the normal test suite.
//
//   <target>_fuzz_replay [--max_seconds=S] [--max_data_mb=M] PATH...
//
// A PATH that is a directory contributes its regular files (recursively, sorted by path; names
// starting with '.' are skipped). Prints one line per input. Exits 0 when every input ran; 1
// when an input ran longer than S seconds (default 30: a hang regression), when no input was
// found (an empty corpus would make the test vacuous) or a PATH does not exist; a crash or a
// finding (tests/fuzz/fuzz_util.h) kills the process, after the line naming the input. An input
// that makes the target call exit() is a finding too (libFuzzer's "fuzz target exited"): the
// process exits 1 naming it, where it would otherwise end with status 0 and skip the rest.
// Outside AddressSanitizer builds the process's data segment is limited to M MiB (default 2048,
// libFuzzer's -rss_limit_mb default), so an allocation sized by a regression input fails
// (and is reported by the target) instead of exhausting the machine; ASan builds get the same
// limit from ASAN_OPTIONS=max_allocation_size_mb (tests/fuzz/CMakeLists.txt).
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#if defined(__SANITIZE_ADDRESS__)
#define PSAQ_REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PSAQ_REPLAY_ASAN 1
#endif
#endif

namespace {

namespace fs = std::filesystem;

// The input being run, for the SIGALRM handler (async-signal-safe use only: write and _exit).
const char* g_current = "";
int g_max_seconds = 30;

void OnAlarm(int) {
  const char prefix[] = "replay: timed out on ";
  const char suffix[] = " (--max_seconds exceeded: a hang)\n";
  (void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
  (void)!write(STDERR_FILENO, g_current, std::strlen(g_current));
  (void)!write(STDERR_FILENO, suffix, sizeof(suffix) - 1);
  _exit(1);
}

// Set while an input runs: exit() called then is the target's, not main's.
bool g_in_input = false;

void OnExitDuringInput() {
  if (!g_in_input) return;
  std::fprintf(stderr, "\nreplay: the target called exit() on %s (a finding)\n", g_current);
  std::fflush(stderr);
  _exit(1);
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Regular files under `path` (or `path` itself), sorted; false when it does not exist.
bool Collect(const fs::path& path, std::vector<std::string>* files) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    files->push_back(path.string());
    return true;
  }
  if (!fs::is_directory(path, ec)) return false;
  std::vector<std::string> found;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (StartsWith(name, ".")) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  files->insert(files->end(), found.begin(), found.end());
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  long max_data_mb = 2048;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (StartsWith(arg, "--max_seconds=")) {
      g_max_seconds = std::atoi(arg.c_str() + 14);
    } else if (StartsWith(arg, "--max_data_mb=")) {
      max_data_mb = std::atol(arg.c_str() + 14);
    } else if (!Collect(arg, &files)) {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", arg.c_str());
      return 1;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "replay: no input files (usage: %s [--max_seconds=S] PATH...)\n", argv[0]);
    return 1;
  }
#ifndef PSAQ_REPLAY_ASAN
  const rlimit limit = {static_cast<rlim_t>(max_data_mb) << 20, static_cast<rlim_t>(max_data_mb) << 20};
  if (max_data_mb > 0 && setrlimit(RLIMIT_DATA, &limit) != 0) {
    std::perror("replay: setrlimit(RLIMIT_DATA)");
    return 1;
  }
#else
  (void)max_data_mb;
#endif
  signal(SIGALRM, &OnAlarm);
  std::atexit(&OnExitDuringInput);
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
      return 1;
    }
    std::fprintf(stderr, "replay: %s (%zu bytes) ... ", file.c_str(), bytes.size());
    std::fflush(stderr);
    g_current = file.c_str();
    const auto start = std::chrono::steady_clock::now();
    alarm(static_cast<unsigned>(g_max_seconds));
    g_in_input = true;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    g_in_input = false;
    alarm(0);
    const double ms = std::chrono::duration<double, std::milli>(
                          std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "ok (%.0f ms)\n", ms);
  }
  std::fprintf(stderr, "replay: %zu inputs ran without a finding\n", files.size());
  return 0;
}

#include "launch/flags.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "launch/flagfiles.h"

namespace psaq::launch {
namespace {

// Where the flags several subcommands take are defined; `--help` lists them apart.
constexpr char kSharedFlagsFile[] = "shared_flags.cc";

std::string BaseName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool BelongsTo(const gflags::CommandLineFlagInfo& info, const Subcommand& sub) {
  return Contains(sub.flags, info.name);
}

bool IsShared(const gflags::CommandLineFlagInfo& info) {
  return BaseName(info.filename) == kSharedFlagsFile;
}

// State of one ParseFlagsOrExit call, read by the exit handler when gflags exits on an error.
struct ParseState {
  bool parsing = false;
  bool print_errors = true;
  std::string subcommand;
  std::FILE* capture = nullptr;  // receives fd 2 while parsing
  int saved_stderr = -1;
  std::string refusal;  // the first validator's reason, "" when none refused
};
ParseState& State() {
  static ParseState state;
  return state;
}

// Restores stderr and returns what gflags wrote while it was captured.
std::string EndCapture() {
  ParseState& state = State();
  std::fflush(stderr);
  dup2(state.saved_stderr, STDERR_FILENO);
  close(state.saved_stderr);
  std::string text;
  std::rewind(state.capture);
  char buf[4096];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), state.capture)) > 0) text.append(buf, got);
  std::fclose(state.capture);
  state.capture = nullptr;
  return text;
}

// The one line to print for gflags' captured messages: the validator's reason when one refused a
// value, else gflags' first message without its "ERROR: " tag.
std::string ParseErrorLine(const std::string& captured) {
  const ParseState& state = State();
  if (!state.refusal.empty()) return state.refusal;
  std::string line = captured.substr(0, captured.find('\n'));
  const std::string tag = "ERROR: ";
  if (line.compare(0, tag.size(), tag) == 0) line.erase(0, tag.size());
  return line.empty() ? "invalid command line" : line;
}

// gflags reports parse errors by calling exit(1); this handler, registered with atexit, runs
// first and turns that into one line on rank 0 and status 2 everywhere.
void ExitDuringParse() {
  ParseState& state = State();
  if (!state.parsing) return;
  state.parsing = false;
  const std::string captured = EndCapture();
  if (state.print_errors) {
    std::fprintf(stderr, "%s\n",
                 FormatUsageError(state.subcommand, ParseErrorLine(captured)).c_str());
    std::fflush(stderr);
  }
  _exit(kUsageExitCode);
}

[[noreturn]] void FailUsage(const Subcommand& sub, const std::string& reason, bool print) {
  if (print) std::fprintf(stderr, "%s\n", FormatUsageError(sub.name, reason).c_str());
  std::exit(kUsageExitCode);
}

// `text` broken into lines of at most `width` characters (words are kept whole), each line
// starting with `indent`.
std::string Wrap(const std::string& text, const std::string& indent, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && indent.size() + line.size() + 1 + word.size() > width) {
      out += indent + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) out += indent + line + "\n";
  return out;
}

// "%g": 0.1, 1e-05, inf.
std::string FormatDouble(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

std::string DescribeFlag(const gflags::CommandLineFlagInfo& info) {
  std::string value = info.type == "string" ? "\"" + info.default_value + "\"" : info.default_value;
  return "  --" + info.name + "=" + value + "  (" + info.type + ")\n" +
         Wrap(info.description, "      ", 100);
}

}  // namespace

std::string FormatUsageError(const std::string& subcommand, const std::string& reason) {
  return "psaq " + subcommand + ": error: " + reason + " (see 'psaq " + subcommand + " --help')";
}

bool IsPsaqFlag(const gflags::CommandLineFlagInfo& info) {
  // Defined in launch/ (glog's and gflags' own flags are defined elsewhere).
  return std::filesystem::path(info.filename).parent_path().filename() == "launch";
}

std::vector<gflags::CommandLineFlagInfo> FlagsOf(const Subcommand& sub) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  std::vector<gflags::CommandLineFlagInfo> own, shared;
  for (const auto& info : all) {
    if (!BelongsTo(info, sub)) continue;
    (IsShared(info) ? shared : own).push_back(info);
  }
  auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
  std::sort(own.begin(), own.end(), by_name);
  std::sort(shared.begin(), shared.end(), by_name);
  own.insert(own.end(), shared.begin(), shared.end());
  return own;
}

std::vector<std::string> OwnersOf(const gflags::CommandLineFlagInfo& info) {
  std::vector<std::string> owners;
  for (const Subcommand& sub : Subcommands()) {
    if (BelongsTo(info, sub)) owners.push_back(sub.name);
  }
  return owners;
}

std::string ProgramHelp() {
  std::string text = "psaq " PSAQ_VERSION
                     ": data-free quantization of vision transformers (PSAQ-ViT)\n\n"
                     "Usage: psaq <subcommand> [--flag=value ...]\n"
                     "       mpirun -np N psaq <subcommand> ...   (N ranks; under Slurm: srun "
                     "--mpi=pmix psaq ...)\n\n"
                     "Subcommands:\n";
  size_t width = 0;
  for (const Subcommand& sub : Subcommands()) width = std::max(width, sub.name.size());
  for (const Subcommand& sub : Subcommands()) {
    text += "  " + sub.name + std::string(width - sub.name.size() + 2, ' ') + sub.summary + "\n";
  }
  text += "\n'psaq <subcommand> --help' lists its flags; 'psaq --version' prints the version.\n";
  return text;
}

std::string SubcommandHelp(const Subcommand& sub) {
  std::string own, shared;
  for (const auto& info : FlagsOf(sub)) {
    (IsShared(info) ? shared : own) += DescribeFlag(info);
  }
  std::string text = "psaq " + sub.name + ": " + sub.summary + "\n\nUsage: " + sub.usage + "\n";
  if (!own.empty()) text += "\nFlags of 'psaq " + sub.name + "':\n" + own;
  if (!shared.empty()) text += "\nShared flags:\n" + shared;
  text +=
      "\nAlso accepted: --flagfile=FILE (one --flag=value per line) and glog's flags, e.g.\n"
      "--log_dir=DIR (a log file per rank there; rank 0 also logs to stderr) and --v=N.\n";
  return text;
}

bool IsHelpArgument(const std::string& arg) {
  return arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpfull" ||
         arg == "--helpshort";
}

std::string CheckFlagNames(const Subcommand& sub, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // a positional argument: refused after parsing
    const std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    std::string name = body.substr(0, eq);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      // --nofoo clears the bool flag --foo.
      if (name.rfind("no", 0) == 0 && gflags::GetCommandLineFlagInfo(name.c_str() + 2, &info) &&
          info.type == "bool") {
        name = name.substr(2);
      } else {
        return "unknown flag --" + name;
      }
    }
    if (IsPsaqFlag(info) && !BelongsTo(info, sub)) {
      std::string reason = "--" + name + " is not a flag of 'psaq " + sub.name + "'";
      const std::vector<std::string> owners = OwnersOf(info);
      if (!owners.empty()) reason += " (it belongs to 'psaq " + owners.front() + "')";
      return reason;
    }
    // "--name value": the next argument is the value, whatever it looks like.
    if (eq == std::string::npos && info.type != "bool") ++i;
  }
  return "";
}

std::string CheckNoForeignFlagsSet(const Subcommand& sub) {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  for (const auto& info : all) {
    if (!info.is_default && IsPsaqFlag(info) && !BelongsTo(info, sub)) {
      return "--" + info.name + " is not a flag of 'psaq " + sub.name + "'";
    }
  }
  return "";
}

void ParseFlagsOrExit(const Subcommand& sub, int* argc, char*** argv, bool print_errors) {
  // The state first: the handler must run before the state's destructor, and exit handlers run
  // in the reverse order of their registration.
  ParseState& state = State();
  static const bool registered = (std::atexit(&ExitDuringParse) == 0);
  (void)registered;
  state.print_errors = print_errors;
  state.subcommand = sub.name;
  state.refusal.clear();
  // gflags follows flagfiles without limit (a self-including one overflows the stack).
  const std::string flagfile_error =
      CheckFlagfiles(std::vector<std::string>(*argv + 1, *argv + *argc));
  if (!flagfile_error.empty()) FailUsage(sub, flagfile_error, print_errors);
  std::fflush(stderr);
  state.capture = std::tmpfile();
  if (state.capture == nullptr) {
    FailUsage(sub, "cannot create a temporary file to parse the flags", print_errors);
  }
  state.saved_stderr = dup(STDERR_FILENO);
  dup2(fileno(state.capture), STDERR_FILENO);
  state.parsing = true;
  gflags::ParseCommandLineFlags(argc, argv, /*remove_flags=*/true);
  state.parsing = false;
  const std::string captured = EndCapture();
  // gflags reports errors by exiting; anything it wrote and survived is a warning: pass it on.
  if (print_errors && !captured.empty()) std::fputs(captured.c_str(), stderr);

  if (*argc > 1) {
    FailUsage(
        sub,
        "unexpected argument '" + std::string((*argv)[1]) + "' (flags take the form --name=value)",
        print_errors);
  }
  const std::string foreign = CheckNoForeignFlagsSet(sub);
  if (!foreign.empty()) FailUsage(sub, foreign, print_errors);
}

std::string EffectiveFlags(const Subcommand& sub) {
  std::string text;
  for (const auto& info : FlagsOf(sub)) {
    text +=
        "  --" + info.name + "=" + info.current_value + (info.is_default ? "" : "  (set)") + "\n";
  }
  return text;
}

bool RefuseFlag(const char* flag, const std::string& reason) {
  ParseState& state = State();
  if (state.refusal.empty()) state.refusal = "--" + std::string(flag) + " " + reason;
  return false;
}

bool CheckPositive(const char* flag, double value) {
  return (value > 0 && std::isfinite(value)) ||
         RefuseFlag(flag, "must be > 0, got " + FormatDouble(value));
}

bool CheckInRange(const char* flag, double value, double lo, double hi) {
  return (value >= lo && value <= hi) ||
         RefuseFlag(flag, "must be in [" + FormatDouble(lo) + ", " + FormatDouble(hi) + "], got " +
                              FormatDouble(value));
}

bool CheckInHalfOpenRange(const char* flag, double value, double lo, double hi) {
  return (value >= lo && value < hi) ||
         RefuseFlag(flag, "must be in [" + FormatDouble(lo) + ", " + FormatDouble(hi) + "), got " +
                              FormatDouble(value));
}

std::vector<std::string> SplitFlagList(const std::string& value) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= value.size()) {
    const size_t end = std::min(value.find(',', start), value.size());
    if (end > start) items.push_back(value.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

bool PositiveDouble(const char* flag, double value) { return CheckPositive(flag, value); }
bool NonNegativeDouble(const char* flag, double value) {
  return CheckInRange(flag, value, 0.0, std::numeric_limits<double>::max());
}
bool Probability(const char* flag, double value) { return CheckInRange(flag, value, 0.0, 1.0); }

bool CheckOneOf(const char* flag, const std::string& value,
                const std::vector<std::string>& allowed) {
  if (Contains(allowed, value)) return true;
  std::string list;
  for (const std::string& a : allowed) list += (list.empty() ? "" : "|") + a;
  return RefuseFlag(flag, "must be one of " + list + ", got '" + value + "'");
}

}  // namespace psaq::launch

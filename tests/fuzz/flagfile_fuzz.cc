// Fuzz target "flagfile": a --flagfile for a psaq subcommand, checked and applied in-process the
// way `psaq <subcommand> --flagfile=FILE` does, short of gflags' process-exiting parts:
//   1. launch::CheckFlagNames on the file's lines taken as arguments (unknown flags, flags of
//      another subcommand);
//   2. gflags::ReadFlagsFromString (gflags' own flagfile parser, with the psaq validators of
//      launch/*.cc: the code behind --flagfile) with errors not fatal, inside a gflags::FlagSaver
//      so that each input starts from the defaults;
//   3. when that succeeds: launch::CheckNoForeignFlagsSet, the subcommand's cross-flag checks
//      (Subcommand::check_flags) and, for generate/quantize, launch::JobOptionsFromFlags;
//      launch::EffectiveFlags always.
// Input layout: the first line names the subcommand ("quantize"); the rest is the flagfile. When
// the first line names none, the whole input is a flagfile for `psaq quantize`.
//
// Left out, because they cannot run in-process: launch::ParseFlagsOrExit (gflags exits the
// process on an error, and the function redirects fd 2 and registers an exit handler) and
// --flagfile lines inside the input (they make gflags read other files: a self-include or
// /dev/zero would test the file system rather than the parser), and gflags' own help and version
// flags (--help*, --version: ReadFlagsFromString acts on them by printing and calling exit(), as
// `psaq --version` means to). Lines containing "flagfile" and lines naming help* or version are
// therefore dropped before step 2; the CLI tests cover --flagfile files and --help end to end.
// Seeds: tests/fuzz/corpus/flagfile (cluster/flags/*.flags and one per subcommand).
#include <gflags/gflags.h>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "launch/flags.h"
#include "launch/job_flags.h"
#include "launch/subcommand.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr char kTarget[] = "flagfile";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Whether a flagfile line sets one of gflags' process-exiting flags (help, helpfull, helpshort,
// helpon, helpmatch, helppackage, helpxml, version), with any dashes and an optional "=value".
bool SetsExitingFlag(const std::string& line) {
  size_t begin = line.find_first_not_of(" \t\r\f\v");
  if (begin == std::string::npos || line[begin] != '-') return false;
  begin = line.find_first_not_of('-', begin);
  if (begin == std::string::npos) return false;
  const std::string name = line.substr(begin, line.find_first_of("= \t\r\f\v", begin) - begin);
  return name.rfind("help", 0) == 0 || name == "version";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace psaq;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const launch::Subcommand* sub = launch::FindSubcommand(input.substr(0, newline));
  std::string contents = input;
  if (sub != nullptr) {
    contents = newline == std::string::npos ? "" : input.substr(newline + 1);
  } else {
    sub = launch::FindSubcommand("quantize");
    if (sub == nullptr) fuzz::Fail(kTarget, "no 'quantize' subcommand");
  }

  std::vector<std::string> args;
  std::string kept;
  for (const std::string& line : Lines(contents)) {
    args.push_back(line);
    if (line.find("flagfile") == std::string::npos && !SetsExitingFlag(line)) kept += line + "\n";
  }
  fuzz::Parses(kTarget, [&] { (void)launch::CheckFlagNames(*sub, args); });

  gflags::FlagSaver restore_defaults_after_this_input;
  if (gflags::ReadFlagsFromString(kept, "psaq", /*errors_are_fatal=*/false)) {
    fuzz::Parses(kTarget, [&] {
      if (!launch::CheckNoForeignFlagsSet(*sub).empty()) return;
      if (sub->check_flags) sub->check_flags();
      if (sub->name == "generate" || sub->name == "quantize") {
        (void)launch::JobOptionsFromFlags(
            sub->name == "generate" ? launch::JobKind::kGenerate : launch::JobKind::kQuantize,
            "cpu");
      }
    });
  }
  (void)launch::EffectiveFlags(*sub);
  return 0;
}

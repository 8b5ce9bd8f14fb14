// psaq: one binary, one subcommand per job (launch/subcommands.cc lists them).
//
//   psaq [--help | --version]
//   [mpirun -np N] psaq <subcommand> [--flag=value ...] [--flagfile=FILE]
//
// Before MPI starts: find the subcommand, answer --help, check the flag names (another
// subcommand's flag is an error), parse and validate the values, run the cross-flag checks. Every
// rank does the same on the same command line, so every rank exits alike on a usage error (status
// 2) while only rank 0 prints the reason. Then the runner (launch/process.h) sets the process up
// and runs the subcommand.
#include <torch/version.h>

#include <cstdio>
#include <string>
#include <vector>

#include "launch/flags.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "launch/subcommand.h"

namespace {

using psaq::launch::kUsageExitCode;

std::string VersionText() {
  std::string text = "psaq " PSAQ_VERSION " (LibTorch " TORCH_VERSION;
#ifdef PSAQ_WITH_CUDA
  text += ", CUDA";
#else
  text += ", CPU only";
#endif
#ifdef PSAQ_WITH_NCCL
  text += ", NCCL";
#endif
  return text + ")\n";
}

int ReportUsage(bool print, const std::string& line) {
  if (print) std::fprintf(stderr, "%s\n", line.c_str());
  return kUsageExitCode;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace psaq::launch;
  const bool root = LaunchedAsRoot();
  gflags::SetVersionString(PSAQ_VERSION);
  gflags::SetUsageMessage("psaq <subcommand> [--flag=value ...]; psaq --help lists them");

  if (argc < 2) {
    if (root) std::fputs(ProgramHelp().c_str(), stderr);
    return kUsageExitCode;
  }
  const std::string first = argv[1];
  if (IsHelpArgument(first)) {
    if (root) std::fputs(ProgramHelp().c_str(), stdout);
    return 0;
  }
  if (first == "--version" || first == "-version") {
    if (root) std::fputs(VersionText().c_str(), stdout);
    return 0;
  }
  const Subcommand* sub = FindSubcommand(first);
  if (sub == nullptr) {
    return ReportUsage(root, "psaq: error: " +
                                 (first[0] == '-' ? "expected a subcommand before '" + first + "'"
                                                  : "unknown subcommand '" + first + "'") +
                                 " (see 'psaq --help')");
  }

  // The subcommand's own command line: argv[0] then its arguments.
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (IsHelpArgument(arg)) {
      if (root) std::fputs(SubcommandHelp(*sub).c_str(), stdout);
      return 0;
    }
  }
  const std::string bad_name = CheckFlagNames(*sub, args);
  if (!bad_name.empty()) return ReportUsage(root, FormatUsageError(sub->name, bad_name));
  std::vector<char*> sub_argv = {argv[0]};
  for (int i = 2; i < argc; ++i) sub_argv.push_back(argv[i]);
  sub_argv.push_back(nullptr);
  int sub_argc = argc - 1;
  char** sub_argv_ptr = sub_argv.data();
  ParseFlagsOrExit(*sub, &sub_argc, &sub_argv_ptr, root);
  try {
    if (sub->check_flags) sub->check_flags();
  } catch (const psaq::launch::UsageError& e) {
    return ReportUsage(root, FormatUsageError(sub->name, e.what()));
  }

  ProcessOptions options;
  options.program = "psaq";
  for (const std::string& name : sub->flags) {
    if (name == "device") options.device = FLAGS_device;
  }
  options.configuration = EffectiveFlags(*sub);
  return RunSubcommand(*sub, options, &sub_argc, &sub_argv_ptr);
}

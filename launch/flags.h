// gflags for `psaq`: which flags belong to which subcommand, help text, parsing that reports one
// line on rank 0 and exits with status 2 on every rank, the effective configuration, and the
// validators used with DEFINE_validator.
//
// A flag belongs to subcommand S when S's table line (launch/subcommands.cc) names it. Every
// other psaq flag (those DEFINEd in launch/) is refused on S's command line and in its
// --flagfile. Flags psaq does not define (glog's --log_dir, --v, ...; gflags' --flagfile) are
// accepted everywhere.
#pragma once

#include <gflags/gflags.h>

#include <cstdint>
#include <string>
#include <vector>

#include "launch/subcommand.h"

namespace psaq::launch {

// The flags of `sub` (its own, then the shared ones it takes), each group sorted by name.
std::vector<gflags::CommandLineFlagInfo> FlagsOf(const Subcommand& sub);

// True when `info` is a psaq flag (DEFINEd in a file of launch/).
bool IsPsaqFlag(const gflags::CommandLineFlagInfo& info);

// The subcommands a psaq flag belongs to, e.g. {"eval"} (empty for a flag no subcommand takes).
std::vector<std::string> OwnersOf(const gflags::CommandLineFlagInfo& info);

// `psaq --help`: usage and one line per subcommand.
std::string ProgramHelp();
// `psaq <sub> --help`: usage, then every flag of `sub` with type, default and description.
std::string SubcommandHelp(const Subcommand& sub);

// Checks the flag names on `args` (the arguments after the subcommand) before gflags parses them:
// returns "" or a one-line reason for the first name that is unknown ("unknown flag --foo") or
// belongs to another subcommand ("--w_bits is not a flag of 'psaq eval'"). Values are not
// looked at (gflags and the validators check them). Arguments after "--" are not flags.
std::string CheckFlagNames(const Subcommand& sub, const std::vector<std::string>& args);

// After parsing: "" or a reason naming a psaq flag of another subcommand that was set (through
// --flagfile: CheckFlagNames has seen the command line).
std::string CheckNoForeignFlagsSet(const Subcommand& sub);

// "psaq <subcommand>: error: <reason> (see 'psaq <subcommand> --help')".
std::string FormatUsageError(const std::string& subcommand, const std::string& reason);

// True for -h, --help, -help, --helpfull, --helpshort (psaq's own help replaces gflags').
bool IsHelpArgument(const std::string& arg);

// Parses `*argc`/`*argv` (argv[0] then the subcommand's arguments) with gflags, removing the flags.
// Flagfiles are checked first (CheckFlagfiles, launch/flagfiles.h: regular files of at most 1 MiB,
// nested at most 8 deep, no cycle). On any error (an unknown flag, a bad value, a refused
// validation, a refused or unreadable --flagfile) gflags' messages are captured instead of
// printed; when `print_errors` is set (rank 0) one line is printed -- the validator's reason when
// there is one -- and the process exits with kUsageExitCode on every rank. Call before MPI is
// initialised. Returns on success only.
void ParseFlagsOrExit(const Subcommand& sub, int* argc, char*** argv, bool print_errors);

// The flags of `sub` with their values, one per line, for the log at start-up; "  (set)" marks
// the flags whose value did not come from the default.
std::string EffectiveFlags(const Subcommand& sub);

// The items of a comma-separated flag value ("a,b,,c" -> {"a", "b", "c"}; "" -> {}).
std::vector<std::string> SplitFlagList(const std::string& value);

// --- Validators for DEFINE_validator --------------------------------------------------------
// On a refused value each records a one-line reason ("--batch_size must be >= 1, got 0") that
// ParseFlagsOrExit prints.

// Records `reason` as the reason a value of --flag was refused; returns false.
bool RefuseFlag(const char* flag, const std::string& reason);

template <int64_t kMin>
bool AtLeast(const char* flag, int32_t value) {
  return value >= kMin ||
         RefuseFlag(flag, "must be >= " + std::to_string(kMin) + ", got " + std::to_string(value));
}
template <int64_t kMin>
bool AtLeast64(const char* flag, int64_t value) {
  return value >= kMin ||
         RefuseFlag(flag, "must be >= " + std::to_string(kMin) + ", got " + std::to_string(value));
}

// For double flags (write a small function per flag that calls one of these):
//   bool ValidateLr(const char* flag, double v) { return CheckPositive(flag, v); }
//   DEFINE_validator(lr, &ValidateLr);
// value > 0 and finite.
bool CheckPositive(const char* flag, double value);
// lo <= value <= hi.
bool CheckInRange(const char* flag, double value, double lo, double hi);
// lo <= value < hi.
bool CheckInHalfOpenRange(const char* flag, double value, double lo, double hi);

// Ready-made validators for double flags: > 0 and finite; >= 0 and finite; in [0, 1].
bool PositiveDouble(const char* flag, double value);
bool NonNegativeDouble(const char* flag, double value);
bool Probability(const char* flag, double value);

// Accepts `value` when it is one of `allowed`; otherwise records "must be one of a|b|c, got 'x'".
bool CheckOneOf(const char* flag, const std::string& value,
                const std::vector<std::string>& allowed);

}  // namespace psaq::launch

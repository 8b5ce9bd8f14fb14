// The `psaq` binary's subcommands: what each one is, and the table that lists them.
//
// Adding a subcommand `foo` = one new file, one table line and one CMake line:
//   1. launch/cmd_foo.cc (a "-" in the name is "_" in the file name: make-scenes is
//      launch/cmd_make_scenes.cc) defines its own flags with DEFINE_* and their DEFINE_validator
//      ranges,
//   and
//        void CheckFooFlags();                      // cross-flag checks; throws UsageError
//        int RunFoo(ProcessContext& process);       // the thin main; returns the exit code
//      inside namespace psaq::launch. Flags that several subcommands take (--model, --batch_size,
//      --device, ...) are defined once in launch/shared_flags.cc; never DEFINE a flag of the same
//      name twice (gflags refuses to start).
//   2. launch/subcommands.cc: declare the two functions and add one line to the table, listing
//      every flag the subcommand takes (its own and the shared ones) by name.
//   3. launch/CMakeLists.txt: cmd_foo.cc in psaq_launch's sources.
// `psaq foo --help` then lists exactly those flags with their descriptions and defaults, and
// every other psaq flag is refused on its command line and in its --flagfile.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace psaq::launch {

class ProcessContext;

// A usage error: a bad flag value or combination. Reported as one line by rank 0, and every rank
// exits with status 2. Throw it only for conditions that depend on the flags alone (never on a
// rank's own state), so that every rank throws it alike.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The exit status of a usage error.
inline constexpr int kUsageExitCode = 2;

struct Subcommand {
  // `psaq <name>`.
  std::string name;
  // One line for `psaq --help`.
  std::string summary;
  // A usage example for `psaq <name> --help`, e.g. "psaq eval --model=M.safetensors
  // --dataset=fashion_mnist".
  std::string usage;
  // Every psaq flag this subcommand takes, by name without dashes (its own and the shared ones of
  // launch/shared_flags.cc). The one place that says which flag belongs to which subcommand.
  std::vector<std::string> flags;
  // Cross-flag checks, run on every rank after flag parsing and before MPI starts; throw
  // UsageError. May be empty.
  std::function<void()> check_flags;
  // The subcommand itself, run after process setup (launch/process.h) inside the top-level
  // runner, which turns any exception into a one-line error and a job abort. Returns the exit
  // status (0 = success).
  std::function<int(ProcessContext&)> run;
};

// Every subcommand, in the order `psaq --help` lists them.
const std::vector<Subcommand>& Subcommands();

// The subcommand called `name`, or nullptr.
const Subcommand* FindSubcommand(const std::string& name);

}  // namespace psaq::launch

// Flagfiles read before gflags reads them, within limits.
//
// gflags follows --flagfile=F on the command line and every "--flagfile=..." line inside F,
// recursively and without limit: a flagfile that includes itself (directly or through another)
// recurses until the stack overflows (SIGSEGV), and --flagfile=/dev/zero is read until memory runs
// out. ParseFlagsOrExit (launch/flags.h) therefore calls CheckFlagfiles first and refuses, with
// one line naming the file, whatever gflags could not survive. The files are then read a second
// time by gflags; one replaced in between is not checked again (a race only the user's own files
// can lose).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace psaq::launch {

struct FlagfileLimits {
  // Largest flagfile, in bytes. Default 1 MiB (a flagfile is a few hundred bytes of --flag=value
  // lines).
  int64_t max_bytes = int64_t{1} << 20;
  // Deepest nesting: a flagfile named on the command line is at depth 1, one it includes at 2.
  // Default 8.
  int max_depth = 8;
  // Flagfiles read in all, a file included twice counting twice (this bounds a chain of files
  // each including the next many times, which is no cycle but multiplies gflags' work).
  // Default 100.
  int max_reads = 100;
};

// Reads every flagfile named in `args` (the subcommand's arguments: "--flagfile=F", "-flagfile=F"
// or "--flagfile F", up to a "--"; F may be a comma-separated list, as gflags takes it) and, in
// each, every "--flagfile=..." line, exactly as gflags will (relative paths from the current
// directory; lines split as gflags splits them; every --flagfile line is followed, whichever
// program section of the file it is in). Returns "" when gflags may read them, else one line
// "--flagfile=<path>: <reason>" (", in <including file>" after the path when nested): cannot be
// opened, not a regular file (a FIFO, a device such as /dev/zero, a directory), larger than
// max_bytes, includes itself ("a -> b -> a"), nested deeper than max_depth, or more than max_reads
// flagfiles read in all. Entries gflags refuses itself (an empty item of a list, one starting with
// '-') are left to gflags. Never blocks on a FIFO, never reads more than max_bytes + 1 bytes of a
// file.
std::string CheckFlagfiles(const std::vector<std::string>& args, const FlagfileLimits& limits = {});

}  // namespace psaq::launch

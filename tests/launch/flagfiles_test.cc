// CheckFlagfiles (launch/flagfiles.h): what gflags would follow is read first, within limits.
#include "launch/flagfiles.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"

namespace psaq::launch {
namespace {

using ::psaq::testing::TempDir;

// `error` is non-empty and contains every one of `parts`.
void ExpectError(const std::string& error, const std::vector<std::string>& parts) {
  EXPECT_FALSE(error.empty());
  for (const std::string& part : parts) {
    EXPECT_NE(error.find(part), std::string::npos) << "'" << part << "' not in: " << error;
  }
  EXPECT_EQ(error.find('\n'), std::string::npos) << "not one line: " << error;
}

TEST(FlagfilesTest, AcceptsNestedFlagfilesInEveryForm) {
  TempDir dir;
  const std::string leaf = dir.Write("leaf.txt", "--batch_size=8\n");
  const std::string other = dir.Write("other.txt", "# comment\n\n-v=1\n");
  // The nested forms gflags reads: -flagfile and --flagfile lines, a list, CRLF line ends.
  const std::string mid = dir.Write("mid.txt", "--model=x\r\n  -flagfile=" + leaf +
                                                   "\r\n--flagfile=" + leaf + "," + other + "\r\n");
  EXPECT_EQ(CheckFlagfiles({"--flagfile=" + mid}), "");
  EXPECT_EQ(CheckFlagfiles({"--flagfile", mid, "--model=y"}), "");
  EXPECT_EQ(CheckFlagfiles({"-flagfile=" + leaf + "," + other}), "");
  // A file included twice, not inside itself, is no cycle.
  const std::string twice = dir.Write("twice.txt", "--flagfile=" + leaf + "\n--flagfile=" + leaf);
  EXPECT_EQ(CheckFlagfiles({"--flagfile=" + twice, "--flagfile=" + twice}), "");
  // Not flagfiles: another flag's value, a positional argument, anything after "--", an empty
  // value (gflags ignores it), list items gflags refuses itself.
  EXPECT_EQ(CheckFlagfiles({"--model=/dev/zero", "/dev/zero", "--", "--flagfile=/dev/zero"}), "");
  EXPECT_EQ(CheckFlagfiles({"--flagfile="}), "");
  EXPECT_EQ(CheckFlagfiles({"--flagfile=,-x"}), "");
}

TEST(FlagfilesTest, RefusesAFileThatIncludesItself) {
  TempDir dir;
  const std::string self = dir.Sub("self.txt");
  dir.Write("self.txt", "--model=x\n--flagfile=" + self + "\n");
  ExpectError(
      CheckFlagfiles({"--flagfile=" + self}),
      {"--flagfile=" + self + ", in " + self, "includes itself", "(" + self + " -> " + self + ")"});
  // Through another file.
  const std::string a = dir.Sub("a.txt"), b = dir.Sub("b.txt");
  dir.Write("a.txt", "--flagfile=" + b + "\n");
  dir.Write("b.txt", "--batch_size=2\n--flagfile=" + a + "\n");
  ExpectError(CheckFlagfiles({"--flagfile=" + a}),
              {"--flagfile=" + a + ", in " + b, "includes itself (" + a + " -> " + b + " -> " + a});
  // The same file under another name (a symlink) is the same file.
  std::filesystem::create_symlink(a, dir.Sub("link.txt"));
  dir.Write("b.txt", "--flagfile=" + dir.Sub("link.txt") + "\n");
  ExpectError(CheckFlagfiles({"--flagfile=" + a}), {"includes itself"});
}

TEST(FlagfilesTest, RefusesDevicesFifosDirectoriesAndMissingFiles) {
  TempDir dir;
  ExpectError(CheckFlagfiles({"--flagfile=/dev/zero"}),
              {"--flagfile=/dev/zero: not a regular file"});
  const std::string fifo = dir.Sub("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Refused at once: opening a FIFO with no writer does not block the check.
  ExpectError(CheckFlagfiles({"--flagfile", fifo}), {"--flagfile=" + fifo, "not a regular file"});
  ExpectError(CheckFlagfiles({"--flagfile=" + dir.path().string()}), {"not a regular file"});
  ExpectError(CheckFlagfiles({"--flagfile=" + dir.Sub("none.txt")}),
              {"--flagfile=" + dir.Sub("none.txt") + ": cannot open: No such file or directory"});
  // Nested: the including file is named.
  const std::string outer = dir.Write("outer.txt", "--flagfile=/dev/zero\n");
  ExpectError(CheckFlagfiles({"--flagfile=" + outer}),
              {"--flagfile=/dev/zero, in " + outer + ": not a regular file"});
}

TEST(FlagfilesTest, RefusesFilesOverTheSizeLimit) {
  TempDir dir;
  FlagfileLimits limits;
  limits.max_bytes = 100;
  const std::string ok = dir.Write("ok.txt", std::string(100, '#'));
  const std::string big = dir.Write("big.txt", std::string(101, '#'));
  EXPECT_EQ(CheckFlagfiles({"--flagfile=" + ok}, limits), "");
  ExpectError(CheckFlagfiles({"--flagfile=" + big}, limits),
              {"--flagfile=" + big + ": 101 B, more than the 100 B a flagfile may hold"});
  // The default limit is 1 MiB.
  const std::string huge = dir.Write("huge.txt", std::string((1 << 20) + 1, '#'));
  ExpectError(CheckFlagfiles({"--flagfile=" + huge}), {"more than the 1.0 MiB a flagfile"});
}

TEST(FlagfilesTest, RefusesDeepNestingAndTooManyReads) {
  TempDir dir;
  FlagfileLimits limits;
  limits.max_depth = 3;
  // f0 -> f1 -> f2 -> f3: four levels.
  for (int i = 0; i < 4; ++i) {
    dir.Write("f" + std::to_string(i) + ".txt",
              i < 3 ? "--flagfile=" + dir.Sub("f" + std::to_string(i + 1) + ".txt") : "");
  }
  EXPECT_EQ(CheckFlagfiles({"--flagfile=" + dir.Sub("f1.txt")}, limits), "");
  ExpectError(CheckFlagfiles({"--flagfile=" + dir.Sub("f0.txt")}, limits),
              {"--flagfile=" + dir.Sub("f3.txt"), "nested more than 3 deep"});
  // A chain each including the next ten times is no cycle, but 10^k reads: bounded.
  const std::string leaf = dir.Write("g3.txt", "");
  for (int i = 2; i >= 0; --i) {
    std::string text;
    for (int k = 0; k < 10; ++k) {
      text += "--flagfile=" + dir.Sub("g" + std::to_string(i + 1) + ".txt") + "\n";
    }
    dir.Write("g" + std::to_string(i) + ".txt", text);
  }
  ExpectError(CheckFlagfiles({"--flagfile=" + dir.Sub("g0.txt")}),
              {"more than 100 flagfiles to read in all"});
  EXPECT_EQ(CheckFlagfiles({"--flagfile=" + dir.Sub("g2.txt")}), "");  // 11 reads
}

TEST(FlagfilesTest, FollowsFlagfileFromTheEnvironment) {
  TempDir dir;
  const std::string self = dir.Sub("env.txt");
  dir.Write("env.txt", "--fromenv=flagfile\n");
  ASSERT_EQ(setenv("FLAGS_flagfile", self.c_str(), 1), 0);
  ExpectError(CheckFlagfiles({"--tryfromenv=batch_size,flagfile"}), {"includes itself"});
  unsetenv("FLAGS_flagfile");
  EXPECT_EQ(CheckFlagfiles({"--tryfromenv=flagfile"}), "");
}

}  // namespace
}  // namespace psaq::launch

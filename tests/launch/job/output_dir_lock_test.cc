// The output directory's lock: one holder at a time, the second refused naming the first, the
// file gone on release, a killed holder's file reported and taken over.
#include "launch/job/output_dir_lock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "dist/base/atomic_file.h"
#include "tests/testing/temp_dir.h"

namespace psaq::job {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string Host() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

TEST(OutputDirLockTest, SecondHolderIsRefusedNamingTheFirst) {
  TempDir dir;
  const std::string d = dir.path().string();
  auto first = std::make_unique<OutputDirLock>(d, "psaq quantize --seed=1");
  EXPECT_EQ(first->warning(), "");
  const std::string lock = OutputDirLock::Path(d);
  EXPECT_EQ(lock, dir / ".psaq.lock");
  const std::string content = base::ReadTextFile(lock);
  EXPECT_NE(content.find("pid=" + std::to_string(::getpid()) + "\n"), std::string::npos) << content;
  EXPECT_NE(content.find("command=psaq quantize --seed=1\n"), std::string::npos) << content;

  // flock conflicts between open files, so a second lock in this process stands for a second job.
  const std::string error = ErrorOf([&] { OutputDirLock second(d, "psaq quantize --seed=2"); });
  EXPECT_NE(error.find(d + ": in use by another psaq job (host " + Host() + ", pid " +
                       std::to_string(::getpid()) + ", started 20"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find(": psaq quantize --seed=1); wait for it to end"), std::string::npos)
      << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  // The refused job left the holder's record alone.
  EXPECT_EQ(base::ReadTextFile(lock), content);

  first.reset();
  EXPECT_FALSE(fs::exists(lock));  // released: nothing left behind
  OutputDirLock third(d, "psaq quantize --seed=3");
  EXPECT_EQ(third.warning(), "");  // a released lock is not a stale one
}

TEST(OutputDirLockTest, StaleLockOfAKilledJobIsReportedAndTakenOver) {
  TempDir dir;
  const std::string d = dir.path().string();
  // What a job killed with SIGKILL leaves: the file with its record, and no flock (the kernel
  // dropped it with the process).
  const std::string lock = dir.Write(".psaq.lock",
                                     "host=node7\npid=4242\nstarted=2026-01-02T03:04:05Z\n"
                                     "command=psaq quantize --w_bits=8\n");
  OutputDirLock taken(d, "psaq quantize --w_bits=4");
  EXPECT_EQ(taken.warning(),
            lock +
                ": taking over the lock of a psaq job that ended without releasing it (host "
                "node7, pid 4242, started 2026-01-02T03:04:05Z: psaq quantize --w_bits=8)");
  const std::string content = base::ReadTextFile(lock);
  EXPECT_NE(content.find("pid=" + std::to_string(::getpid()) + "\n"), std::string::npos);
  EXPECT_EQ(content.find("4242"), std::string::npos) << content;
  // And it is held: the next job is refused, naming the new holder.
  const std::string error = ErrorOf([&] { OutputDirLock second(d, ""); });
  EXPECT_NE(error.find("pid " + std::to_string(::getpid())), std::string::npos) << error;
  EXPECT_NE(error.find("psaq quantize --w_bits=4"), std::string::npos) << error;
}

TEST(OutputDirLockTest, CommandIsKeptOnOneLine) {
  TempDir dir;
  const std::string d = dir.path().string();
  OutputDirLock lock(d, "psaq quantize\n--fake=1\nhost=evil");
  const std::string content = base::ReadTextFile(OutputDirLock::Path(d));
  EXPECT_NE(content.find("command=psaq quantize --fake=1 host=evil\n"), std::string::npos)
      << content;
}

TEST(OutputDirLockTest, UnwritableDirectoryIsOneClearError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  TempDir dir;
  fs::create_directories(dir / "ro");
  fs::permissions(dir / "ro", fs::perms::owner_read | fs::perms::owner_exec);
  const std::string error = ErrorOf([&] { OutputDirLock lock(dir / "ro", ""); });
  fs::permissions(dir / "ro", fs::perms::owner_all);
  EXPECT_NE(error.find(dir / "ro/.psaq.lock: cannot open the output directory's lock: "),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace psaq::job

// The subcommand table and the flag rules of launch/flags.h, on the real registry of `psaq`'s
// flags (psaq_launch holds every cmd_*.cc).
#include "launch/flags.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "launch/subcommand.h"

namespace psaq::launch {
namespace {

std::vector<gflags::CommandLineFlagInfo> AllFlags() {
  std::vector<gflags::CommandLineFlagInfo> all;
  gflags::GetAllFlags(&all);
  return all;
}

const Subcommand& Sub(const std::string& name) {
  const Subcommand* sub = FindSubcommand(name);
  EXPECT_NE(sub, nullptr) << name;
  return *sub;
}

TEST(SubcommandTableTest, EntriesAreCompleteAndTheirFlagsExist) {
  std::set<std::string> names;
  for (const Subcommand& sub : Subcommands()) {
    EXPECT_TRUE(names.insert(sub.name).second) << "duplicate subcommand " << sub.name;
    EXPECT_FALSE(sub.summary.empty()) << sub.name;
    EXPECT_NE(sub.usage.find("psaq " + sub.name), std::string::npos) << sub.name;
    EXPECT_TRUE(static_cast<bool>(sub.run)) << sub.name;
    // Every listed flag exists, is a psaq flag, and is listed once.
    std::set<std::string> seen;
    for (const std::string& flag : sub.flags) {
      EXPECT_TRUE(seen.insert(flag).second) << sub.name << ": --" << flag << " listed twice";
      gflags::CommandLineFlagInfo info;
      ASSERT_TRUE(gflags::GetCommandLineFlagInfo(flag.c_str(), &info))
          << sub.name << ": --" << flag;
      EXPECT_TRUE(IsPsaqFlag(info)) << sub.name << ": --" << flag << " (" << info.filename << ")";
    }
  }
  EXPECT_EQ(FindSubcommand("no_such_thing"), nullptr);
}

TEST(SubcommandTableTest, EveryPsaqFlagBelongsToASubcommandAndIsDocumented) {
  for (const auto& info : AllFlags()) {
    if (!IsPsaqFlag(info)) continue;
    EXPECT_FALSE(OwnersOf(info).empty())
        << "--" << info.name << " (" << info.filename << ") belongs to no subcommand";
    EXPECT_GE(info.description.size(), 20u) << "--" << info.name << " needs a description";
    // Every int32, int64 and double flag has a range, checked by a validator (uint64 flags are
    // seeds: every value is valid).
    if (info.type == "int32" || info.type == "int64" || info.type == "double") {
      EXPECT_TRUE(info.has_validator_fn) << "--" << info.name << " has no validator";
    }
  }
}

TEST(HelpTest, SubcommandHelpListsEveryFlagWithDefaultAndDescription) {
  for (const Subcommand& sub : Subcommands()) {
    const std::string help = SubcommandHelp(sub);
    const auto flags = FlagsOf(sub);
    EXPECT_FALSE(flags.empty()) << sub.name;
    for (const auto& info : flags) {
      EXPECT_NE(help.find("--" + info.name + "="), std::string::npos)
          << sub.name << " --" << info.name;
      // The description's first word appears (it is wrapped, so not necessarily whole).
      EXPECT_NE(help.find(info.description.substr(0, info.description.find(' '))),
                std::string::npos)
          << sub.name << " --" << info.name;
    }
  }
  const std::string program = ProgramHelp();
  for (const Subcommand& sub : Subcommands()) {
    EXPECT_NE(program.find("  " + sub.name + " "), std::string::npos) << sub.name;
  }
}

TEST(FlagNamesTest, RefusesUnknownAndForeignFlags) {
  const Subcommand& eval = Sub("eval");
  EXPECT_EQ(CheckFlagNames(eval, {"--model=x", "--batch_size", "8", "-dataset=y"}), "");
  EXPECT_EQ(CheckFlagNames(eval, {"--nosuchflag=1"}), "unknown flag --nosuchflag");
  EXPECT_EQ(CheckFlagNames(eval, {"--file=x"}),
            "--file is not a flag of 'psaq eval' (it belongs to 'psaq inspect')");
  // Shared flags a subcommand does not take are refused too.
  EXPECT_EQ(CheckFlagNames(Sub("inspect"), {"--max_images=5"}),
            "--max_images is not a flag of 'psaq inspect' (it belongs to 'psaq eval')");
  // --noX for a bool X; glog's and gflags' own flags are accepted everywhere.
  EXPECT_EQ(CheckFlagNames(Sub("inspect"), {"--notensors", "--v=2", "--flagfile=f"}), "");
  EXPECT_EQ(CheckFlagNames(eval, {"--notensors"}),
            "--tensors is not a flag of 'psaq eval' (it belongs to 'psaq inspect')");
  // The value of "--name value" and everything after "--" are not flag names.
  EXPECT_EQ(CheckFlagNames(eval, {"--model", "--file", "--", "--nosuchflag"}), "");
}

TEST(FlagNamesTest, ForeignFlagSetAnotherWayIsFound) {
  gflags::FlagSaver saver;  // restores every flag at the end of the test
  EXPECT_EQ(CheckNoForeignFlagsSet(Sub("eval")), "");
  ASSERT_FALSE(gflags::SetCommandLineOption("tensors", "true").empty());
  EXPECT_EQ(CheckNoForeignFlagsSet(Sub("eval")), "--tensors is not a flag of 'psaq eval'");
  EXPECT_EQ(CheckNoForeignFlagsSet(Sub("inspect")), "");
}

TEST(EffectiveFlagsTest, ListsValuesAndMarksTheSetOnes) {
  gflags::FlagSaver saver;
  ASSERT_FALSE(gflags::SetCommandLineOption("batch_size", "8").empty());
  const std::string text = EffectiveFlags(Sub("eval"));
  EXPECT_NE(text.find("  --batch_size=8  (set)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  --split=test\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("--file="), std::string::npos) << text;
}

TEST(ValidatorTest, RangesAndChoices) {
  EXPECT_TRUE(AtLeast<1>("batch_size", 1));
  EXPECT_FALSE(AtLeast<1>("batch_size", 0));
  EXPECT_TRUE(AtLeast64<0>("max_images", 0));
  EXPECT_FALSE(AtLeast64<0>("max_images", -5));
  EXPECT_TRUE(CheckPositive("lr", 1e-3));
  EXPECT_FALSE(CheckPositive("lr", 0));
  EXPECT_FALSE(CheckPositive("lr", std::numeric_limits<double>::infinity()));
  EXPECT_TRUE(CheckInRange("flip_prob", 1.0, 0, 1));
  EXPECT_FALSE(CheckInRange("flip_prob", 1.5, 0, 1));
  EXPECT_TRUE(CheckInHalfOpenRange("label_smoothing", 0.0, 0, 1));
  EXPECT_FALSE(CheckInHalfOpenRange("label_smoothing", 1.0, 0, 1));
  EXPECT_TRUE(CheckOneOf("device", "cuda", {"cpu", "cuda"}));
  EXPECT_FALSE(CheckOneOf("device", "gpu", {"cpu", "cuda"}));
  // The registered validators refuse bad values without changing the flag.
  gflags::FlagSaver saver;
  EXPECT_TRUE(gflags::SetCommandLineOption("batch_size", "0").empty());
  EXPECT_TRUE(gflags::SetCommandLineOption("device", "gpu").empty());
  EXPECT_TRUE(gflags::SetCommandLineOption("max_images", "-1").empty());
  EXPECT_EQ(gflags::GetCommandLineFlagInfoOrDie("batch_size").current_value, "64");
}

TEST(UsageErrorTest, OneLineWithTheWayToHelp) {
  EXPECT_EQ(FormatUsageError("eval", "--model is required"),
            "psaq eval: error: --model is required (see 'psaq eval --help')");
  EXPECT_TRUE(IsHelpArgument("--help"));
  EXPECT_TRUE(IsHelpArgument("-h"));
  EXPECT_FALSE(IsHelpArgument("--helper"));
}

TEST(SplitFlagListTest, DropsEmptyItems) {
  EXPECT_EQ(SplitFlagList(""), std::vector<std::string>{});
  EXPECT_EQ(SplitFlagList("a"), std::vector<std::string>{"a"});
  EXPECT_EQ(SplitFlagList("a,b,,c,"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(SplitFlagList(",x"), std::vector<std::string>{"x"});
}

}  // namespace
}  // namespace psaq::launch

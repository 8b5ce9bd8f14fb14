#include "launch/process.h"

#include <gtest/gtest.h>

#include <string>

namespace psaq::launch {
namespace {

TEST(IntraOpThreadsTest, SharesTheNodeAndRespectsBinding) {
  EXPECT_EQ(IntraOpThreads(16, 16, 1), 16);  // one rank, unbound: every core
  EXPECT_EQ(IntraOpThreads(16, 16, 4), 4);   // four unbound ranks share the node
  EXPECT_EQ(IntraOpThreads(1, 16, 2), 1);    // bound to one core
  EXPECT_EQ(IntraOpThreads(8, 16, 4), 4);    // bound to a socket of 8 shared by 2 of 4 ranks
  EXPECT_EQ(IntraOpThreads(2, 2, 3), 1);     // more ranks than cores: at least one thread
  EXPECT_EQ(IntraOpThreads(4, 64, 1), 4);    // a Slurm step's 4 CPUs on a big node
}

TEST(FormatErrorMessageTest, FirstLineIsTheSummaryAndTheDetailIsIndentedOnRequest) {
  const std::string text =
      "w.safetensors: weights do not match the model (1 problem):\n  missing keys (1):\n"
      "    head.weight\n";
  EXPECT_EQ(FormatErrorMessage(text, true),
            "w.safetensors: weights do not match the model (1 problem):\n    missing keys (1):\n"
            "      head.weight");
  EXPECT_EQ(FormatErrorMessage(text, false),
            "w.safetensors: weights do not match the model (1 problem):");
  EXPECT_EQ(FormatErrorMessage("one line", true), "one line");
  EXPECT_EQ(FormatErrorMessage("crlf\r\nnext\r\n\n", true), "crlf\n  next");
  EXPECT_EQ(FormatErrorMessage("", true), "unknown error");
  EXPECT_EQ(FormatErrorMessage("\nonly detail", true), "unknown error\n  only detail");
}

TEST(FormatErrorMessageTest, LongDetailIsCutAndCounted) {
  std::string text = "summary";
  for (size_t i = 0; i < kMaxErrorDetailLines + 7; ++i) text += "\nline " + std::to_string(i);
  const std::string out = FormatErrorMessage(text, true);
  const std::string last = "  line " + std::to_string(kMaxErrorDetailLines - 1) + "\n";
  EXPECT_NE(out.find(last), std::string::npos) << out;
  EXPECT_EQ(out.find("line " + std::to_string(kMaxErrorDetailLines) + "\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.rfind('\n') + 1), "  ... (7 more lines)");
}

}  // namespace
}  // namespace psaq::launch

#include "launch/study/study_file.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "tests/testing/temp_dir.h"

namespace psaq::study {
namespace {

// The error of parsing `text` as /s/study.json ("" when it parses).
std::string ErrorOf(const std::string& text, const StudyParseOptions& options = {}) {
  try {
    ParseStudy(text, "/s/study.json", options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

const char* kMinimal =
    R"({"output_dir": "out", "grid": {"ranks": [1, 2], "num_samples": [8],
        "method": ["v1"], "model": ["deit_tiny_patch16_224"]}})";

TEST(StudyFileTest, MinimalStudyGetsDefaultsAndResolvesTheOutputDirBesideTheFile) {
  const Study s = ParseStudy(kMinimal, "/s/study.json");
  EXPECT_EQ(s.file, "/s/study.json");
  EXPECT_EQ(s.output_dir, "/s/out");
  EXPECT_EQ(s.ranks, (std::vector<int>{1, 2}));
  EXPECT_EQ(s.num_samples, (std::vector<int>{8}));
  ASSERT_EQ(s.bits.size(), 1u);
  EXPECT_EQ(BitsName(s.bits[0]), "w4a8");
  EXPECT_EQ(s.seeds, (std::vector<int>{0}));
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.models[0].label, "deit_tiny_patch16_224");  // a preset: passed through
  EXPECT_EQ(s.models[0].path, "deit_tiny_patch16_224");
  EXPECT_TRUE(s.flags.empty());
  EXPECT_FALSE(s.evaluates());
}

TEST(StudyFileTest, ZooNamesAndRelativePathsResolveToFiles) {
  testing::TempDir dir;
  const std::string zoo_file = dir.Write("zoo/tiny.safetensors", "x");
  const std::string local = dir.Write("models/mine.safetensors", "x");
  StudyParseOptions options;
  options.zoo_dir = dir / "zoo";
  const Study s = ParseStudy(
      R"({"output_dir": "/abs/out", "grid": {"ranks": [1], "num_samples": [8], "method": ["v2"],
          "model": ["tiny", "models/mine.safetensors"]}})",
      dir / "study.json", options);
  EXPECT_EQ(s.output_dir, "/abs/out");
  ASSERT_EQ(s.models.size(), 2u);
  EXPECT_EQ(s.models[0].label, "tiny");
  EXPECT_EQ(s.models[0].path, zoo_file);
  EXPECT_EQ(s.models[1].label, "mine");
  EXPECT_EQ(s.models[1].path, local);
}

TEST(StudyFileTest, FlagsBecomeCommandLineTextSortedByName) {
  const Study s = ParseStudy(
      R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"],
          "model": ["m"], "bits": ["w8a8", "w4a4"], "seed": [3, 1]},
          "flags": {"v1_iterations": 20, "eval_dataset": "fashion_mnist", "image_lr": 0.25,
                    "eval_float": false}})",
      "/s/study.json");
  ASSERT_EQ(s.flags.size(), 4u);
  EXPECT_EQ(s.flags[0], (std::pair<std::string, std::string>{"eval_dataset", "fashion_mnist"}));
  EXPECT_EQ(s.flags[1], (std::pair<std::string, std::string>{"eval_float", "false"}));
  EXPECT_EQ(s.flags[2], (std::pair<std::string, std::string>{"image_lr", "0.25"}));
  EXPECT_EQ(s.flags[3], (std::pair<std::string, std::string>{"v1_iterations", "20"}));
  EXPECT_TRUE(s.evaluates());
  EXPECT_EQ(BitsName(s.bits[1]), "w4a4");
  EXPECT_EQ(s.seeds, (std::vector<int>{3, 1}));
}

TEST(StudyFileTest, EachBadInputIsOneLineNamingFileAndKey) {
  const std::string grid =
      R"("grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": ["m"]})";
  struct Case {
    std::string text;
    std::string want;  // a substring of the message, after "/s/study.json: "
  };
  const std::vector<Case> cases = {
      {"{", "(file): not valid JSON"},
      {"[]", "(file): must be a JSON object"},
      {R"({"output_dir": "o", "grdi": {}})", "grdi: unknown key"},
      {R"({"grid": {}})", "output_dir: required"},
      {R"({"output_dir": 3, )" + grid + "}", "output_dir: required"},
      {R"({"output_dir": "o"})", "grid: required"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"]}})",
       "grid.model: required"},
      {R"({"output_dir": "o", "grid": {"rank": [1]}})", "grid.rank: unknown key"},
      {R"({"output_dir": "o", "grid": {"ranks": 2, "num_samples": [8], "method": ["v1"], "model": ["m"]}})",
       "grid.ranks: must be a list"},
      {R"({"output_dir": "o", "grid": {"ranks": [], "num_samples": [8], "method": ["v1"], "model": ["m"]}})",
       "grid.ranks: must not be empty"},
      {R"({"output_dir": "o", "grid": {"ranks": [0], "num_samples": [8], "method": ["v1"], "model": ["m"]}})",
       "grid.ranks: 0 is not an integer in [1,"},
      {R"({"output_dir": "o", "grid": {"ranks": [1.5], "num_samples": [8], "method": ["v1"], "model": ["m"]}})",
       "grid.ranks: 1.5 is not an integer"},
      {R"({"output_dir": "o", "grid": {"ranks": [2, 2], "num_samples": [8], "method": ["v1"], "model": ["m"]}})",
       "grid.ranks: lists 2 twice"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [-8], "method": ["v1"], "model": ["m"]}})",
       "grid.num_samples: -8 is not an integer"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v3"], "model": ["m"]}})",
       "grid.method: 'v3' is not one of v1, v2, noise, real"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": ["m"], "bits": ["w4a1"]}})",
       "grid.bits: 'w4a1' is not w<bits>a<bits>"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": ["m"], "seed": [-1]}})",
       "grid.seed: -1 is not an integer"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": [""]}})",
       "grid.model: \"\" is not a non-empty string"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": ["no/such.safetensors"]}})",
       "grid.model: 'no/such.safetensors': no such file"},
      {R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1"], "model": ["a b"]}})",
       "grid.model: 'a b': its name 'a b' must use only"},
      {R"({"output_dir": "o", )" + grid + R"(, "flags": []})", "flags: must be an object"},
      {R"({"output_dir": "o", )" + grid + R"(, "flags": {"seed": 1}})",
       "flags.seed: is set per cell by the study"},
      {R"({"output_dir": "o", )" + grid + R"(, "flags": {"resume": true}})",
       "flags.resume: is set per cell"},
      {R"({"output_dir": "o", )" + grid + R"(, "flags": {"x": [1]}})",
       "flags.x: must be a string, number or boolean"},
      {R"({"output_dir": "o", )" + grid + R"(, "flags": {"x": "a\tb"}})",
       "flags.x: must not contain tabs"},
      {R"({"output_dir": "o", )" + grid + R"(, "method_flags": []})",
       "method_flags: must be an object"},
      {R"({"output_dir": "o", )" + grid + R"(, "method_flags": {"v3": {}}})",
       "method_flags.v3: unknown key"},
      {R"({"output_dir": "o", )" + grid + R"(, "method_flags": {"v1": {"seed": 2}}})",
       "method_flags.v1.seed: is set per cell"},
      {R"({"output_dir": "o", )" + grid + R"(, "method_flags": {"v1": {"x": null}}})",
       "method_flags.v1.x: must be a string, number or boolean"},
      {R"({"output_dir": "o", )" + grid +
           R"(, "flags": {"x": 1}, "method_flags": {"v1": {"x": 2}}})",
       "method_flags.v1.x: is also in flags"},
      {R"({"output_dir": "o", )" + grid + R"(, "method_flags": {"v2": {"eval_dataset": "f"}}})",
       "method_flags.v2.eval_dataset: belongs in flags"},
  };
  for (const Case& c : cases) {
    const std::string error = ErrorOf(c.text);
    EXPECT_EQ(error.rfind("/s/study.json: ", 0), 0u) << c.text << " -> " << error;
    EXPECT_NE(error.find(c.want), std::string::npos) << c.text << " -> " << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  }
}

TEST(StudyFileTest, FlagsOutsideTheAllowedListAreRefused) {
  StudyParseOptions options;
  options.allowed_flags = {"v1_iterations", "eval_dataset"};
  const std::string base = R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8],
      "method": ["v1"], "model": ["m"]}, "flags": )";
  EXPECT_EQ(ErrorOf(base + R"({"v1_iterations": 2}})", options), "");
  EXPECT_NE(ErrorOf(base + R"({"v1_iteration": 2}})", options)
                .find("flags.v1_iteration: not a flag of psaq quantize"),
            std::string::npos);
}

TEST(StudyFileTest, MethodFlagsAreKeptPerMethod) {
  const Study s = ParseStudy(
      R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8], "method": ["v1", "v2"],
          "model": ["m"]}, "flags": {"samples_per_batch": 4},
          "method_flags": {"v2": {"v2_rounds": 2, "v2_image_warmup": 1}, "noise": {}}})",
      "/s/study.json");
  EXPECT_EQ(s.flags.size(), 1u);
  ASSERT_EQ(s.method_flags.size(), 1u);  // noise's empty object adds nothing
  EXPECT_EQ(s.method_flags.at("v2"), (std::vector<std::pair<std::string, std::string>>{
                                         {"v2_image_warmup", "1"}, {"v2_rounds", "2"}}));
}

TEST(StudyFileTest, TwoModelsWithOneNameAreRefused) {
  testing::TempDir dir;
  dir.Write("a/m.safetensors", "x");
  dir.Write("b/m.safetensors", "x");
  try {
    ParseStudy(R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8],
        "method": ["v1"], "model": ["a/m.safetensors", "b/m.safetensors"]}})",
               dir / "study.json");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("grid.model: two models are named 'm'"), std::string::npos)
        << e.what();
  }
}

TEST(StudyFileTest, AModelPathWithATabIsRefused) {
  testing::TempDir dir;
  dir.Write("a\tb/m.safetensors", "x");
  try {
    ParseStudy(R"({"output_dir": "o", "grid": {"ranks": [1], "num_samples": [8],
        "method": ["v1"], "model": ["a\tb/m.safetensors"]}})",
               dir / "study.json");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("grid.model: 'a\tb/m.safetensors': the path must not"),
              std::string::npos)
        << e.what();
  }
}

TEST(StudyFileTest, ReadStudyFileNamesAMissingFile) {
  try {
    ReadStudyFile("/nonexistent/study.json");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/study.json"), std::string::npos);
  }
}

TEST(StudyFileTest, BitsParseOnlyTheDocumentedForm) {
  Bits b;
  EXPECT_TRUE(ParseBits("w8a4", &b));
  EXPECT_EQ(b.weight, 8);
  EXPECT_EQ(b.activation, 4);
  for (const char* bad : {"w9a8", "w4a", "4a8", "w4b8", "w1a8", "W4A8", "w4a8 "}) {
    EXPECT_FALSE(ParseBits(bad, &b)) << bad;
  }
}

}  // namespace
}  // namespace psaq::study

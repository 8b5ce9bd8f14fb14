#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "model/file_limits.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "psaq_safetensors_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a file by hand: u64 little-endian length of `header`, `header`, `data`.
  std::string WriteRaw(const std::string& header, const std::string& data = "") {
    const std::string path = Path("raw.safetensors");
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
    return path;
  }

  // Expects ReadSafetensors and ReadSafetensorsHeader to both reject `path` with a message that
  // starts with the path and contains `reason`.
  static void ExpectRejected(const std::string& path, const std::string& reason) {
    for (bool header_only : {false, true}) {
      SCOPED_TRACE(header_only ? "ReadSafetensorsHeader" : "ReadSafetensors");
      try {
        header_only ? ReadSafetensorsHeader(path) : ReadSafetensors(path);
        ADD_FAILURE() << "no error for " << path << " (expected '" << reason << "')";
      } catch (const SafetensorsError& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
        EXPECT_NE(msg.find(reason), std::string::npos) << "'" << reason << "' not in: " << msg;
      }
    }
  }

  fs::path dir_;
};

// One tensor per supported dtype with non-trivial values.
std::vector<std::pair<std::string, at::Tensor>> EveryDtype() {
  at::manual_seed(7);
  return {
      {"f64", at::randn({2, 3}, at::kDouble)},
      {"f32", at::randn({4}, at::kFloat)},
      {"f16", at::randn({3, 1, 2}, at::kFloat).to(at::kHalf)},
      {"bf16", at::randn({5}, at::kFloat).to(at::kBFloat16)},
      {"i64", at::randint(-(int64_t{1} << 40), int64_t{1} << 40, {3}, at::kLong)},
      {"i32", at::randint(-100000, 100000, {2, 2}, at::kInt)},
      {"i16", at::randint(-30000, 30000, {3}, at::kShort)},
      {"i8", at::randint(-128, 127, {6}, at::kChar)},
      {"u8", at::randint(0, 255, {2, 3}, at::kByte)},
      {"bool", at::randint(0, 2, {7}, at::kByte).to(at::kBool)},
  };
}

TEST_F(SafetensorsTest, EveryDtypeRoundTripsBitExactWithMetadata) {
  auto tensors = EveryDtype();
  const std::map<std::string, std::string> metadata = {{"arch", "vit"}, {"note", "x\"y\n"}};
  const std::string path = Path("all.safetensors");
  WriteSafetensors(path, tensors, metadata);
  const SafetensorsFile file = ReadSafetensors(path);
  EXPECT_EQ(file.source, path);
  EXPECT_EQ(file.metadata, metadata);
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    EXPECT_EQ(file.tensors[i].first, tensors[i].first);  // file order = the order given
    EXPECT_TRUE(file.tensors[i].second.is_contiguous());
    EXPECT_TENSOR_IDENTICAL(file.tensors[i].second, tensors[i].second);
  }
}

TEST_F(SafetensorsTest, ScalarsEmptyAndNonContiguousTensorsRoundTrip) {
  const at::Tensor base = at::arange(12, at::kFloat).reshape({3, 4});
  const std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"scalar", at::scalar_tensor(2.5, at::kDouble)},
      {"empty", at::empty({0, 4}, at::kFloat)},
      {"empty_mid", at::empty({3, 0, 2}, at::kHalf)},
      {"transposed", base.t()},
      {"column", base.select(1, 1)},
      {"scalar_bool", at::scalar_tensor(true, at::kBool)},
  };
  const std::string path = Path("shapes.safetensors");
  WriteSafetensors(path, tensors);
  const SafetensorsFile file = ReadSafetensors(path);
  EXPECT_TRUE(file.metadata.empty());
  ASSERT_EQ(file.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].first);
    EXPECT_TENSOR_IDENTICAL(file.Get(tensors[i].first), tensors[i].second);
  }
  EXPECT_EQ(file.Get("scalar").dim(), 0);
  EXPECT_EQ(file.Get("empty_mid").sizes(), at::IntArrayRef({3, 0, 2}));
}

TEST_F(SafetensorsTest, DataBufferStartsEightByteAligned) {
  for (const std::string name :
       {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"}) {
    const std::string path = Path(name + ".safetensors");
    WriteSafetensors(path, {{name, at::ones({1}, at::kByte)}});
    std::ifstream in(path, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    EXPECT_EQ((8 + n) % 8, 0u) << name;
    EXPECT_EQ(fs::file_size(path), 8 + n + 1) << name;
    EXPECT_EQ(ReadSafetensors(path).Get(name).item<uint8_t>(), 1) << name;
  }
}

TEST_F(SafetensorsTest, ReadsGoldenTimmFile) {
  const std::string path = psaq::testing::GoldenDir() + "/vit_fmnist.weights.safetensors";
  const SafetensorsFile file = ReadSafetensors(path);
  EXPECT_EQ(file.metadata.at("arch"), "vit");
  ASSERT_TRUE(file.metadata.count("config"));
  const at::Tensor& cls = file.Get("cls_token");
  EXPECT_EQ(cls.scalar_type(), at::kFloat);
  EXPECT_EQ(cls.sizes(), at::IntArrayRef({1, 1, 32}));
  // Values read from the file's bytes independently (Python struct.unpack).
  EXPECT_EQ(cls[0][0][0].item<float>(), -2.0321019746916136e-06f);
  EXPECT_EQ(file.Get("head.weight")[0][0].item<float>(), 0.2871904671192169f);
  EXPECT_EQ(file.Get("patch_embed.proj.weight").sizes(), at::IntArrayRef({32, 1, 4, 4}));
  EXPECT_EQ(file.Get("pos_embed").sizes(), at::IntArrayRef({1, 50, 32}));
  EXPECT_TRUE(file.Has("norm.bias"));
  EXPECT_FALSE(file.Has("nope"));
  EXPECT_EQ(file.ToMap().size(), file.tensors.size());
}

TEST_F(SafetensorsTest, HeaderOnlyReadGivesMetaTensorsWithShapesAndDtypes) {
  const std::string path = psaq::testing::GoldenDir() + "/vit_fmnist.weights.safetensors";
  const SafetensorsFile full = ReadSafetensors(path);
  const SafetensorsFile header = ReadSafetensorsHeader(path);
  EXPECT_EQ(header.metadata, full.metadata);
  ASSERT_EQ(header.tensors.size(), full.tensors.size());
  for (size_t i = 0; i < full.tensors.size(); ++i) {
    EXPECT_EQ(header.tensors[i].first, full.tensors[i].first);
    EXPECT_TRUE(header.tensors[i].second.is_meta());
    EXPECT_EQ(header.tensors[i].second.sizes(), full.tensors[i].second.sizes());
    EXPECT_EQ(header.tensors[i].second.scalar_type(), full.tensors[i].second.scalar_type());
  }
}

TEST_F(SafetensorsTest, GetOfAbsentNameThrowsNamingTheSource) {
  const std::string path = Path("one.safetensors");
  WriteSafetensors(path, {{"a", at::zeros({2})}});
  const SafetensorsFile file = ReadSafetensors(path);
  try {
    file.Get("b");
    ADD_FAILURE() << "no error";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": no tensor named 'b'"), std::string::npos);
  }
}

TEST_F(SafetensorsTest, WriteReplacesExistingFileAndLeavesNoTemporary) {
  const std::string path = Path("w.safetensors");
  WriteSafetensors(path, {{"a", at::zeros({2})}});
  WriteSafetensors(path, {{"b", at::ones({3})}});
  const SafetensorsFile file = ReadSafetensors(path);
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors[0].first, "b");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SafetensorsTest, WriteIntoMissingDirectoryThrowsWithPath) {
  const std::string path = Path("no/such/dir/w.safetensors");
  try {
    WriteSafetensors(path, {{"a", at::zeros({2})}});
    ADD_FAILURE() << "no error";
  } catch (const SafetensorsError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot create", 0), 0u) << e.what();
  }
}

TEST_F(SafetensorsTest, FailedRenameRemovesTheTemporary) {
  const std::string path = Path("a_directory");
  fs::create_directories(fs::path(path) / "child");  // rename() cannot replace a non-empty dir
  try {
    WriteSafetensors(path, {{"a", at::zeros({2})}});
    ADD_FAILURE() << "no error";
  } catch (const SafetensorsError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot rename", 0), 0u) << e.what();
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(SafetensorsTest, WriteRejectsBadArgumentsWithPath) {
  const std::string path = Path("bad.safetensors");
  const auto expect_error = [&](const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                const std::string& reason) {
    try {
      WriteSafetensors(path, tensors);
      ADD_FAILURE() << "no error, expected " << reason;
    } catch (const SafetensorsError& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find(reason), std::string::npos) << msg;
    }
  };
  expect_error({{"a", at::zeros({1})}, {"a", at::zeros({1})}}, "duplicate tensor name 'a'");
  expect_error({{"__metadata__", at::zeros({1})}}, "'__metadata__' cannot name a tensor");
  expect_error({{"c", at::zeros({2}, at::kComplexFloat)}}, "tensor 'c' has dtype");
  expect_error({{"u", at::Tensor()}}, "tensor 'u' is undefined");
  expect_error({{std::string("bad\xff"), at::zeros({1})}}, "cannot encode the header");
  EXPECT_FALSE(fs::exists(path));
}

// --- Malformed files: one case per test --------------------------------------------------------

TEST_F(SafetensorsTest, MissingFileIsRejected) {
  ExpectRejected(Path("absent.safetensors"), "cannot open for reading");
}

TEST_F(SafetensorsTest, FileShorterThanLengthPrefixIsRejected) {
  const std::string path = Path("short.safetensors");
  std::ofstream(path, std::ios::binary) << "abcde";
  ExpectRejected(path, "file too short (5 bytes)");
}

TEST_F(SafetensorsTest, HeaderLengthPastEndOfFileIsRejected) {
  const std::string path = Path("len.safetensors");
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
  }
  ExpectRejected(path, "header length 1000 is past the end of the file (10 bytes)");
}

TEST_F(SafetensorsTest, HeaderLengthOverLimitIsRejected) {
  // A sparse file large enough to hold the claimed header: no real 100 MB is written.
  const std::string path = Path("huge.safetensors");
  {
    std::ofstream out(path, std::ios::binary);
    const uint64_t n = 100'000'001;
    out.write(reinterpret_cast<const char*>(&n), 8);
  }
  fs::resize_file(path, 8 + 100'000'001);
  ExpectRejected(path, "exceeds the 100 MB limit");
}

TEST_F(SafetensorsTest, InvalidJsonIsRejected) {
  ExpectRejected(WriteRaw("{\"a\": {\"dtype\": \"F32\","), "header is not valid JSON");
}

TEST_F(SafetensorsTest, NonObjectHeaderIsRejected) {
  ExpectRejected(WriteRaw("[1, 2]"), "header is not a JSON object");
}

TEST_F(SafetensorsTest, NonObjectEntryIsRejected) {
  ExpectRejected(WriteRaw(R"({"w": [1, 2]})"), "tensor 'w': entry is not an object");
}

TEST_F(SafetensorsTest, EntryMissingAFieldIsRejected) {
  ExpectRejected(WriteRaw(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", "abcd"),
                 "tensor 'w': missing field \"dtype\"");
  ExpectRejected(WriteRaw(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", "abcd"),
                 "tensor 'w': missing field \"shape\"");
  ExpectRejected(WriteRaw(R"({"w": {"dtype": "F32", "shape": [1]}})", "abcd"),
                 "tensor 'w': missing field \"data_offsets\"");
}

TEST_F(SafetensorsTest, EntryFieldOfWrongTypeIsRejected) {
  ExpectRejected(WriteRaw(R"({"w": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", "abcd"),
                 "tensor 'w': \"dtype\" is not a string");
  ExpectRejected(WriteRaw(R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", "abcd"),
                 "tensor 'w': \"shape\" is not an array");
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "abcd"),
      "tensor 'w': shape dimension is not an integer: 1.5");
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", 4]}})", "abcd"),
      "tensor 'w': data_offsets[0] is not an integer");
}

TEST_F(SafetensorsTest, NegativeShapeDimensionIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "abcd"),
      "tensor 'w': negative shape dimension -1");
}

TEST_F(SafetensorsTest, UnknownDtypeIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}})", "abcdefgh"),
      "tensor 'w': unknown dtype 'C64'");
}

TEST_F(SafetensorsTest, DataOffsetsNotAPairIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}})", "a"),
      "tensor 'w': \"data_offsets\" is not [begin, end]");
}

TEST_F(SafetensorsTest, NegativeDataOffsetIsRejected) {
  ExpectRejected(WriteRaw(R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [-1, 0]}})", "a"),
                 "tensor 'w': data_offsets[0] is negative");
}

TEST_F(SafetensorsTest, BeginAfterEndIsRejected) {
  ExpectRejected(WriteRaw(R"({"w": {"dtype": "U8", "shape": [0], "data_offsets": [1, 0]}})", "a"),
                 "tensor 'w': data_offsets [1, 0] has begin > end");
}

TEST_F(SafetensorsTest, EndPastDataBufferIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "abcd"),
      "tensor 'w': data_offsets end 8 is past the data buffer (4 bytes)");
}

TEST_F(SafetensorsTest, ByteSizeNotMatchingShapeIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "abcdefgh"),
      "tensor 'w': byte size 8 does not match F32 [3] (12 bytes)");
}

TEST_F(SafetensorsTest, ShapeWhoseSizeOverflowsIsRejected) {
  ExpectRejected(
      WriteRaw(
          R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})",
          "abcdefgh"),
      "size overflows");
}

TEST_F(SafetensorsTest, OverlappingTensorsAreRejected) {
  ExpectRejected(WriteRaw(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                             "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}})",
                          "abcdef"),
                 "tensors 'a' and 'b' overlap");
}

TEST_F(SafetensorsTest, HoleBetweenTensorsIsRejected) {
  ExpectRejected(WriteRaw(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                             "b": {"dtype": "U8", "shape": [2], "data_offsets": [4, 6]}})",
                          "abcdef"),
                 "hole in the data buffer: bytes [2, 4) before tensor 'b'");
}

TEST_F(SafetensorsTest, TrailingBytesAfterLastTensorAreRejected) {
  ExpectRejected(
      WriteRaw(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}})", "abcd"),
      "2 trailing bytes after the last tensor");
}

TEST_F(SafetensorsTest, DuplicateTensorNameIsRejected) {
  // nlohmann alone would keep one of the two silently.
  ExpectRejected(WriteRaw(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                             "a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}})",
                          "abcd"),
                 "duplicate tensor name 'a'");
}

TEST_F(SafetensorsTest, DuplicateKeyInsideEntryIsRejected) {
  ExpectRejected(
      WriteRaw(R"({"a": {"dtype": "U8", "dtype": "I8", "shape": [2], "data_offsets": [0, 2]}})",
               "ab"),
      "duplicate key 'dtype'");
}

TEST_F(SafetensorsTest, MetadataNotAStringMapIsRejected) {
  ExpectRejected(WriteRaw(R"({"__metadata__": ["x"]})"),
                 "__metadata__ is not an object of strings");
  ExpectRejected(WriteRaw(R"({"__metadata__": {"arch": "vit", "depth": 12}})"),
                 "__metadata__ value of 'depth' is not a string: 12");
}

TEST_F(SafetensorsTest, BoolByteOtherThanZeroOrOneIsRejected) {
  const std::string path =
      WriteRaw(R"({"b": {"dtype": "BOOL", "shape": [3], "data_offsets": [0, 3]}})",
               std::string("\x01\x00\x02", 3));
  EXPECT_NO_THROW(ReadSafetensorsHeader(path));  // the header is fine; the data is not
  try {
    ReadSafetensors(path);
    ADD_FAILURE() << "no error";
  } catch (const SafetensorsError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": tensor 'b': BOOL data"), std::string::npos);
  }
}

// --- Limits (model/file_limits.h): each refused before the work or allocation it bounds ---------

TEST_F(SafetensorsTest, JsonScanCountsNestingAndTopMembersOutsideStrings) {
  const JsonShape shape = ScanJson(R"({"a": [[1]], "b\"[{:": "x:[", "c": {"d": 1}})");
  EXPECT_EQ(shape.max_depth, 3);
  EXPECT_EQ(shape.top_members, 3);
  EXPECT_FALSE(shape.too_deep);
  EXPECT_FALSE(ScanJson(std::string(64, '['), 64).too_deep);
  EXPECT_TRUE(ScanJson(std::string(65, '['), 64).too_deep);
}

TEST_F(SafetensorsTest, DeeplyNestedHeaderIsRefusedBeforeParsing) {
  // 75,000 levels and more crashed psaq inspect/eval/quantize (SIGSEGV: nlohmann's dump(), used
  // for the error message, recurses once per level).
  const int deep = 100'000;
  ExpectRejected(WriteRaw(R"({"__metadata__": {"a": )" + std::string(deep, '[') +
                          std::string(deep, ']') + "}}"),
                 "header JSON nests deeper than 64 levels");
  // At the limit (object, metadata object, 62 arrays) the header is parsed, and refused for what
  // it is.
  ExpectRejected(
      WriteRaw(R"({"__metadata__": {"a": )" + std::string(62, '[') + std::string(62, ']') + "}}"),
      "__metadata__ value of 'a' is not a string");
}

// A valid file of `n` one-byte U8 tensors "t0".."t<n-1>", the last one named `last` if given.
std::string ManyTensorsHeader(int64_t n, const std::string& last = "") {
  std::string header = "{";
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = (i == n - 1 && !last.empty()) ? last : "t" + std::to_string(i);
    header += (i ? ",\"" : "\"") + name + R"(":{"dtype":"U8","shape":[1],"data_offsets":[)" +
              std::to_string(i) + "," + std::to_string(i + 1) + "]}";
  }
  return header + "}";
}

TEST_F(SafetensorsTest, HeaderWithTheMostTensorsAllowedIsReadWithoutHanging) {
  // The duplicate-key check was quadratic (20,000 entries 3.4 s, 40,000 12 s; 100,000 would take
  // minutes). A hang guard, not a speed goal: the bound is generous.
  const std::string path = WriteRaw(ManyTensorsHeader(kMaxTensors), std::string(kMaxTensors, 'x'));
  const auto start = std::chrono::steady_clock::now();
  const SafetensorsFile file = ReadSafetensorsHeader(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(static_cast<int64_t>(file.tensors.size()), kMaxTensors);
  EXPECT_LT(seconds, 30.0) << "reading a header of " << kMaxTensors << " tensors";
  // A repeat at the very end is still found.
  ExpectRejected(WriteRaw(ManyTensorsHeader(kMaxTensors, "t0"), std::string(kMaxTensors, 'x')),
                 "duplicate tensor name 't0'");
}

TEST_F(SafetensorsTest, MoreTensorsThanTheLimitAreRefusedBeforeParsing) {
  ExpectRejected(WriteRaw(ManyTensorsHeader(kMaxTensors + 1), std::string(kMaxTensors + 1, 'x')),
                 "header lists 100001 tensors, more than the 100000 tensors psaq reads");
  // The probe's case: 200,000 entries in 14 MB, well within the header-size limit, refused by the
  // scan before parsing.
  ExpectRejected(WriteRaw(ManyTensorsHeader(200'000), std::string(200'000, 'x')),
                 "header lists 200000 entries, more than the 100000 tensors psaq reads");
}

TEST_F(SafetensorsTest, DataBufferOverTheLimitIsRefusedBeforeAnyAllocation) {
  // A sparse file: 32 GiB + 1 of data is claimed, none of it written.
  const std::string path = WriteRaw("{}");
  fs::resize_file(path, 8 + 2 + kMaxDataBytes + 1);
  ExpectRejected(path, "tensor data of 34359738369 bytes exceeds the 32 GiB limit");
}

TEST_F(SafetensorsTest, FifoDeviceAndDirectoryAreRefusedWithoutBlocking) {
  // A FIFO used to block psaq inspect forever (the open waits for a writer that never comes).
  const std::string fifo = Path("pipe.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ExpectRejected(fifo, "not a regular file (a FIFO)");
  ExpectRejected("/dev/null", "not a regular file (a character device)");
  ExpectRejected(dir_.string(), "not a regular file (a directory)");
}

TEST_F(SafetensorsTest, HandBuiltValidFileWithNullMetadataAndEmptyTensorIsAccepted) {
  const float value = 1.5f;
  const std::string path = WriteRaw(
      R"({"__metadata__": null, "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                  "v": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}})",
      std::string(reinterpret_cast<const char*>(&value), 4));
  const SafetensorsFile file = ReadSafetensors(path);
  EXPECT_TRUE(file.metadata.empty());
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "e");  // ascending data offset
  EXPECT_EQ(file.Get("e").sizes(), at::IntArrayRef({0, 3}));
  EXPECT_EQ(file.Get("v").item<float>(), 1.5f);
}

}  // namespace
}  // namespace psaq::model

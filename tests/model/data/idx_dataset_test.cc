#include "model/data/idx_dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/data/idx_reader.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

using ::psaq::testing::TempDir;

// IDX bytes: magic (0, 0, type, ndims), big-endian dims, then `data`.
std::string IdxBytes(uint8_t type, const std::vector<uint32_t>& dims, const std::string& data) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8)
      s.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  return s + data;
}

std::string Iota(size_t n, int start = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((start + i) & 0xff);
  return s;
}

std::string WriteGzip(const TempDir& dir, const std::string& name, const std::string& bytes) {
  const std::string path = dir.Sub(name);
  gzFile f = gzopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
  return path;
}

// Runs `fn`, expects a DatasetError whose message contains `path` and `reason`.
template <typename Fn>
void ExpectDatasetError(Fn fn, const std::string& path, const std::string& reason) {
  try {
    fn();
    ADD_FAILURE() << "no DatasetError for " << path << " (" << reason << ")";
  } catch (const DatasetError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
  }
}

TEST(IdxReaderTest, ReadsPlainAndGzipFilesIdentically) {
  TempDir dir;
  const std::string bytes = IdxBytes(0x08, {3, 2, 4}, Iota(24, 5));
  const std::string plain = dir.Write("a-idx3-ubyte", bytes);
  const std::string gz = WriteGzip(dir, "a-idx3-ubyte.gz", bytes);
  at::Tensor a = ReadIdxUint8(plain, 3);
  at::Tensor b = ReadIdxUint8(gz, 3);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{3, 2, 4}));
  EXPECT_EQ(a.scalar_type(), at::kByte);
  EXPECT_EQ(a[2][1][3].item<int64_t>(), 5 + 23);  // row-major
  EXPECT_TENSOR_IDENTICAL(a, b);
}

TEST(IdxReaderTest, RejectsBadMagicWithPathAndReason) {
  TempDir dir;
  const std::string lead =
      dir.Write("lead", std::string("\x01") + IdxBytes(0x08, {2}, "ab").substr(1));
  ExpectDatasetError([&] { ReadIdxUint8(lead, 1); }, lead, "leading bytes are not zero");
  const std::string type = dir.Write("type", IdxBytes(0x0D, {2}, std::string(8, 'x')));
  ExpectDatasetError([&] { ReadIdxUint8(type, 1); }, type, "element type 0x0d");
  const std::string rank = WriteGzip(dir, "rank.gz", IdxBytes(0x08, {2, 2}, "abcd"));
  ExpectDatasetError([&] { ReadIdxUint8(rank, 3); }, rank, "2 dimensions, expected 3");
  const std::string zero = dir.Write("zero", IdxBytes(0x08, {0, 28, 28}, ""));
  ExpectDatasetError([&] { ReadIdxUint8(zero, 3); }, zero, "dimension 0 is 0");
  const std::string huge = dir.Write("huge", IdxBytes(0x08, {0xffffffffu, 0xffffffffu, 2}, ""));
  ExpectDatasetError([&] { ReadIdxUint8(huge, 3); }, huge, "implausible dimensions");
}

TEST(IdxReaderTest, RejectsTruncatedAndTrailingDataPlainAndGzip) {
  TempDir dir;
  const std::string short_data = IdxBytes(0x08, {4, 2, 2}, Iota(15));
  ExpectDatasetError([&] { ReadIdxUint8(dir.Write("t", short_data), 3); }, dir.Sub("t"),
                     "promises 16 data bytes, the file holds 15");
  const std::string gz = WriteGzip(dir, "t.gz", short_data);
  ExpectDatasetError([&] { ReadIdxUint8(gz, 3); }, gz, "truncated");
  const std::string header = dir.Write("h", IdxBytes(0x08, {4, 2, 2}, "").substr(0, 9));
  ExpectDatasetError([&] { ReadIdxUint8(header, 3); }, header, "truncated inside the dimension");
  const std::string tiny = dir.Write("tiny", std::string(2, '\0'));
  ExpectDatasetError([&] { ReadIdxUint8(tiny, 3); }, tiny, "shorter than the 4-byte IDX magic");
  const std::string trailing = WriteGzip(dir, "tr.gz", IdxBytes(0x08, {4}, Iota(5)));
  ExpectDatasetError([&] { ReadIdxUint8(trailing, 1); }, trailing, "trailing data after 4 bytes");
}

TEST(IdxReaderTest, DeclaredCountIsCheckedAgainstTheFileSizeBeforeReading) {
  TempDir dir;
  // 1 MiB of zeros compresses to about 1 KB; the header promises 2^36 bytes, more than any
  // gzip file of that size can expand to: refused at once, not after inflating the MiB.
  const std::string bomb =
      WriteGzip(dir, "bomb.gz", IdxBytes(0x08, {1u << 20, 256, 256}, std::string(1 << 20, '\0')));
  ExpectDatasetError([&] { ReadIdxUint8(bomb, 3); }, bomb,
                     "truncated: the header promises 68719476736 data bytes, more than a gzip "
                     "file of ");
  ExpectDatasetError([&] { ReadIdxUint8(bomb, 3); }, bomb, "(deflate expands at most 1032:1)");
  // A FIFO (or device) is refused without waiting for a writer.
  const std::string fifo = dir.Sub("fifo-idx1-ubyte");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ExpectDatasetError([&] { ReadIdxUint8(fifo, 1); }, fifo, "not a regular file");
  ExpectDatasetError([&] { ReadIdxUint8("/dev/zero", 1); }, "/dev/zero", "not a regular file");
}

TEST(IdxReaderTest, RejectsCorruptGzipAndMissingFile) {
  TempDir dir;
  // A gzip stream cut in half: zlib reports an unexpected end of file.
  const std::string good = WriteGzip(dir, "full.gz", IdxBytes(0x08, {64, 8, 8}, Iota(4096)));
  std::string gz_bytes;
  {
    std::ifstream in(good, std::ios::binary);
    gz_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::string cut = dir.Write("cut.gz", gz_bytes.substr(0, gz_bytes.size() / 2));
  ExpectDatasetError([&] { ReadIdxUint8(cut, 3); }, cut, "truncated");
  // A valid gzip header followed by a deflate block of the reserved type 3.
  const std::string garbage = dir.Write(
      "garbage.gz", std::string("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10) + std::string(32, '\x07'));
  ExpectDatasetError([&] { ReadIdxUint8(garbage, 3); }, garbage, "read failed: invalid block type");
  const std::string missing = dir.Sub("nope-idx3-ubyte.gz");
  ExpectDatasetError([&] { ReadIdxUint8(missing, 3); }, missing, "cannot open");
}

TEST(IdxImageDatasetTest, RejectsCountMismatchAndOutOfRangeLabels) {
  TempDir dir;
  const std::string images = dir.Write("img", IdxBytes(0x08, {3, 2, 2}, Iota(12)));
  const std::string two_labels =
      WriteGzip(dir, "two.gz", IdxBytes(0x08, {2}, std::string("\x01\x02", 2)));
  ExpectDatasetError(
      [&] {
        IdxImageDataset(images, two_labels, {"a", "b", "c"}, "t");
      },
      two_labels, "2 labels for the 3 images of " + images);
  const std::string big_label =
      dir.Write("big", IdxBytes(0x08, {3}, std::string("\x00\x02\x03", 3)));
  ExpectDatasetError(
      [&] {
        IdxImageDataset(images, big_label, {"a", "b", "c"}, "t");
      },
      big_label, "label 3 at index 2 is not below the 3 classes");
}

TEST(IdxImageDatasetTest, DecodesImagesAndChecksumsDecompressedBytes) {
  TempDir dir;
  const std::string image_bytes = IdxBytes(0x08, {3, 2, 2}, Iota(12, 100));
  const std::string label_bytes = IdxBytes(0x08, {3}, std::string("\x02\x00\x01", 3));
  IdxImageDataset plain(dir.Write("i", image_bytes), dir.Write("l", label_bytes), {"a", "b", "c"},
                        "tiny");
  IdxImageDataset gz(WriteGzip(dir, "i.gz", image_bytes), WriteGzip(dir, "l.gz", label_bytes),
                     {"a", "b", "c"}, "tiny");
  ASSERT_EQ(plain.size(), 3);
  EXPECT_EQ(plain.num_classes(), 3);
  Sample s;
  std::string error;
  ASSERT_TRUE(plain.Decode(1, &s, &error));
  EXPECT_EQ(s.label, 0);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{2, 2, 1}));
  EXPECT_EQ(s.image[1][0][0].item<int64_t>(), 100 + 4 + 2);
  EXPECT_EQ(plain.SourceOf(2), dir.Sub("i") + "[2]");
  EXPECT_THROW(plain.Decode(3, &s, &error), c10::Error);
  // Same content, plain or gzip: same checksum; it is the CRC-32 of pixels then labels.
  EXPECT_EQ(plain.ContentChecksum(), gz.ContentChecksum());
  const std::string content = Iota(12, 100) + std::string("\x02\x00\x01", 3);
  EXPECT_EQ(plain.ContentChecksum(), crc32(0, reinterpret_cast<const Bytef*>(content.data()),
                                           static_cast<uInt>(content.size())));
  EXPECT_EQ(FormatChecksum(0xd12e98e2u), "crc32:d12e98e2");
}

TEST(FashionMnistTest, ReadsTheRealTestSplit) {
  // launch/test.sh installs the Debian package dataset-fashion-mnist; its absence is a failure.
  FashionMnist test(kDebianFashionMnistDir, "test");
  ASSERT_EQ(test.size(), 10000);
  ASSERT_EQ(test.num_classes(), 10);
  EXPECT_EQ(test.class_names()[9], "Ankle boot");
  EXPECT_EQ(test.class_names()[0], "T-shirt/top");
  // Balanced: 1000 images per class; the first labels are 9, 2, 1, 1, 6.
  at::Tensor hist = at::bincount(test.labels().to(at::kLong), {}, 10);
  EXPECT_TRUE(at::equal(hist, at::full({10}, 1000, at::kLong))) << hist;
  Sample s;
  std::string error;
  ASSERT_TRUE(test.Decode(0, &s, &error));
  EXPECT_EQ(s.label, 9);
  EXPECT_EQ(s.image.sizes(), (std::vector<int64_t>{28, 28, 1}));
  // Row 14 of image 0 starts 0 0 0 0 0 0 2 4 1 0 0 0 98 136 (read with Python's gzip module).
  EXPECT_EQ(s.image[14][12][0].item<int64_t>(), 98);
  EXPECT_EQ(s.image[14][13][0].item<int64_t>(), 136);
  std::vector<int64_t> first;
  for (int i = 0; i < 5; ++i) first.push_back(test.labels()[i].item<int64_t>());
  EXPECT_EQ(first, (std::vector<int64_t>{9, 2, 1, 1, 6}));
  // zlib.crc32(pixels, then labels) of the decompressed files, computed with Python.
  EXPECT_EQ(test.ContentChecksum(), 0xd12e98e2u);
  EXPECT_NE(test.Describe().find("10000 images 28x28, 10 classes"), std::string::npos)
      << test.Describe();
  EXPECT_EQ(FashionMnist(kDebianFashionMnistDir, "t10k").ContentChecksum(), 0xd12e98e2u);
}

TEST(FashionMnistTest, RejectsUnknownSplitAndMissingDirectory) {
  EXPECT_THROW(FashionMnist(kDebianFashionMnistDir, "validation"), c10::Error);
  ExpectDatasetError([] { FashionMnist("/nonexistent/fmnist", "train"); }, "/nonexistent/fmnist",
                     "not a directory");
  TempDir dir;
  dir.Write("train-images-idx3-ubyte.gz", "");
  ExpectDatasetError([&] { FashionMnist(dir.path().string(), "train"); },
                     dir.Sub("train-labels-idx1-ubyte.gz"),
                     "not found (nor " + dir.Sub("train-labels-idx1-ubyte") + ")");
}

TEST(FashionMnistTest, FallsBackToUncompressedFiles) {
  TempDir dir;
  dir.Write("t10k-images-idx3-ubyte", IdxBytes(0x08, {2, 28, 28}, Iota(2 * 784)));
  WriteGzip(dir, "t10k-labels-idx1-ubyte.gz", IdxBytes(0x08, {2}, std::string("\x09\x03", 2)));
  FashionMnist tiny(dir.path().string(), "test");
  EXPECT_EQ(tiny.size(), 2);
  EXPECT_EQ(tiny.labels()[1].item<int64_t>(), 3);
  EXPECT_EQ(tiny.SourceOf(0), dir.Sub("t10k-images-idx3-ubyte") + "[0]");
}

}  // namespace
}  // namespace psaq::model

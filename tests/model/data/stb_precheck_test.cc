#include "model/data/stb_precheck.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // implementation in libstb.so

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "model/data/image_folder.h"
#include "tests/testing/temp_dir.h"

namespace psaq::model {
namespace {

using Bytes = std::vector<uint8_t>;

bool Check(const Bytes& b, std::string* error) {
  return CheckJpegHuffmanTables(b.data(), b.size(), error);
}

// A real baseline JPEG from stb_image_write (its standard Huffman tables), 16x8 RGB.
Bytes RealJpeg() {
  std::vector<unsigned char> pixels(16 * 8 * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<unsigned char>(i * 7);
  Bytes out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<Bytes*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, 16, 8, 3, pixels.data(), 90);
  return out;
}

// A DHT segment holding one table with the given counts (the first of the 16, the rest 0) and
// as many symbols as they sum to.
Bytes Dht(std::vector<int> counts, int cls_dest = 0x00) {
  counts.resize(16, 0);
  size_t codes = 0;
  for (int c : counts) codes += static_cast<size_t>(c);
  const size_t length = 2 + 1 + 16 + codes;
  Bytes b = {0xFF, 0xC4, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length & 0xFF),
             static_cast<uint8_t>(cls_dest)};
  for (int c : counts) b.push_back(static_cast<uint8_t>(c));
  for (size_t i = 0; i < codes; ++i) b.push_back(static_cast<uint8_t>(i));
  return b;
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

const Bytes kSoi = {0xFF, 0xD8};
const Bytes kEoi = {0xFF, 0xD9};

TEST(JpegCheckTest, PassesRealJpegsAndOtherFormats) {
  std::string error;
  const Bytes jpeg = RealJpeg();
  ASSERT_GT(jpeg.size(), 100u);
  EXPECT_TRUE(Check(jpeg, &error)) << error;
  EXPECT_TRUE(Check({0x89, 'P', 'N', 'G'}, &error));
  EXPECT_TRUE(Check({}, &error));
  // 256 codes is the most a table may declare (16 lengths x 16 codes).
  EXPECT_TRUE(Check(Concat({kSoi, Dht(std::vector<int>(16, 16)), kEoi}), &error)) << error;
}

TEST(JpegCheckTest, RefusesTablesDeclaringMoreThan256Codes) {
  std::vector<int> counts(16, 16);
  counts[15] = 17;  // 257 codes
  std::string error;
  EXPECT_FALSE(Check(Concat({kSoi, Dht(counts), kEoi}), &error));
  EXPECT_EQ(error,
            "corrupt JPEG: Huffman table 1 of the DHT segment at byte 2 declares 257 codes, more "
            "than 256");
  // The second table of a segment is checked too: splice two tables into one segment.
  Bytes good = Dht({1, 1}), bad = Dht(std::vector<int>(16, 20));
  Bytes seg = {0xFF, 0xC4, 0, 0};
  seg.insert(seg.end(), good.begin() + 4, good.end());
  seg.insert(seg.end(), bad.begin() + 4, bad.end());
  const size_t length = seg.size() - 2;
  seg[2] = static_cast<uint8_t>(length >> 8);
  seg[3] = static_cast<uint8_t>(length & 0xFF);
  EXPECT_FALSE(Check(Concat({kSoi, seg, kEoi}), &error));
  EXPECT_NE(error.find("Huffman table 2 of the DHT segment at byte 2 declares 320 codes"),
            std::string::npos)
      << error;
}

TEST(JpegCheckTest, RefusesBadClassesAndTruncatedTables) {
  std::string error;
  EXPECT_FALSE(Check(Concat({kSoi, Dht({1}, 0x24), kEoi}), &error));
  EXPECT_NE(error.find("class 2 and destination 4"), std::string::npos) << error;
  Bytes cut = Dht({3, 0, 0});  // counts say 3 symbols; the segment holds 0
  cut.resize(cut.size() - 3);
  cut[3] = static_cast<uint8_t>(cut[3] - 3);
  EXPECT_FALSE(Check(Concat({kSoi, cut, kEoi}), &error));
  EXPECT_NE(error.find("declares 3 codes but its segment holds 0 symbols"), std::string::npos)
      << error;
}

TEST(JpegCheckTest, FindsBadTablesBetweenScans) {
  // A progressive-style file: a scan whose entropy-coded data holds a stuffed 0xFF00, a restart
  // marker and fill bytes, then a DHT for the next scan.
  const Bytes sos = {0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00};
  const Bytes data = {0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF};
  std::string error;
  EXPECT_TRUE(Check(Concat({kSoi, sos, data, Dht({2, 2}), kEoi}), &error)) << error;
  EXPECT_FALSE(Check(Concat({kSoi, sos, data, Dht(std::vector<int>(16, 30)), kEoi}), &error));
  EXPECT_NE(error.find("declares 480 codes"), std::string::npos) << error;
}

TEST(JpegCheckTest, FindsBadTablesAfterBytesThatAreNotMarkers) {
  // stb_image skips stray bytes between header segments and still reads the DHT after them
  // (the fuzzer's second finding, tests/fuzz/regressions/image/jpeg-dht-after-garbage-...).
  const Bytes garbage = {0x00, 0x01, 0x03, 0x11};
  std::string error;
  EXPECT_TRUE(Check(Concat({kSoi, garbage, Dht({2, 2}), kEoi}), &error)) << error;
  EXPECT_FALSE(Check(Concat({kSoi, garbage, Dht(std::vector<int>(16, 17)), kEoi}), &error));
  EXPECT_EQ(error,
            "corrupt JPEG: Huffman table 1 of the DHT segment at byte 6 declares 272 codes, more "
            "than 256");
  // stb also takes a file as a JPEG when 0xFF fill bytes come before its SOI marker (the third
  // finding, regressions/image/jpeg-dht-after-fill-bytes-before-soi).
  const Bytes fill = {0xFF, 0xFF, 0xFF};
  EXPECT_FALSE(Check(Concat({fill, kSoi, Dht(std::vector<int>(16, 17)), kEoi}), &error));
  EXPECT_EQ(error,
            "corrupt JPEG: Huffman table 1 of the DHT segment at byte 5 declares 272 codes, more "
            "than 256");
  EXPECT_TRUE(Check(Concat({fill, kSoi, Dht({2, 2}), kEoi}), &error)) << error;
}

// A real PNG from stb_image_write, 4x3 grey.
Bytes RealPng() {
  std::vector<unsigned char> pixels(12, 100);
  Bytes out;
  stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<Bytes*>(ctx);
        o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, 4, 3, 1, pixels.data(), 4);
  return out;
}

bool CheckPng(const Bytes& b, std::string* error) {
  return CheckPngChunkLengths(b.data(), b.size(), error);
}

TEST(PngCheckTest, PassesRealPngsAndRefusesChunksPastTheEnd) {
  std::string error;
  const Bytes png = RealPng();
  ASSERT_GT(png.size(), 40u);
  EXPECT_TRUE(CheckPng(png, &error)) << error;
  EXPECT_TRUE(PrecheckForStb(png.data(), png.size(), &error)) << error;
  EXPECT_TRUE(CheckPng(RealJpeg(), &error));
  // The first chunk (IHDR, at byte 8) declaring 1 GiB.
  Bytes big = png;
  big[8] = 0x40;
  big[9] = big[10] = big[11] = 0;
  EXPECT_FALSE(CheckPng(big, &error));
  EXPECT_EQ(error, "corrupt PNG: the IHDR chunk at byte 8 declares 1073741824 bytes, past the end "
                   "of the file");
  EXPECT_FALSE(PrecheckForStb(big.data(), big.size(), &error));
  // A file cut inside its last chunk's CRC, and a length above the PNG limit of 2^31 - 1.
  Bytes cut = png;
  cut.resize(cut.size() - 2);
  EXPECT_FALSE(CheckPng(cut, &error));
  EXPECT_NE(error.find("the IEND chunk at byte"), std::string::npos) << error;
  Bytes huge = png;
  huge[8] = 0x80;
  EXPECT_FALSE(CheckPng(huge, &error));
  EXPECT_NE(error.find("declares 2147483661 bytes"), std::string::npos) << error;
}

// The fuzzer's out-of-memory finding: a 246-byte PNG whose IDAT made stb allocate 2 GiB.
TEST(PngCheckTest, RefusesTheFuzzFinding) {
  std::ifstream in(std::string(PSAQ_TEST_DATA_DIR) +
                       "/../fuzz/regressions/image/png-idat-length-past-end",
                   std::ios::binary);
  ASSERT_TRUE(in) << "missing regression input";
  const Bytes finding((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(finding.size(), 246u);
  std::string error;
  EXPECT_FALSE(PrecheckForStb(finding.data(), finding.size(), &error));
  EXPECT_NE(error.find("corrupt PNG: the "), std::string::npos) << error;
}

// The fuzzer's finding (stb_image 2.27 writes past its Huffman tables) is refused by the image
// reader before stb decodes it, naming the file.
TEST(JpegCheckTest, ImageFolderRefusesTheFuzzFinding) {
  std::ifstream in(std::string(PSAQ_TEST_DATA_DIR) +
                       "/../fuzz/regressions/image/jpeg-dht-counts-over-256",
                   std::ios::binary);
  ASSERT_TRUE(in) << "missing regression input";
  const std::string finding((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(finding.size(), 9u);
  testing::TempDir dir;
  const std::string path = dir.Write("images/a/bad.jpg", finding);
  ImageFolder folder(dir.Sub("images"));
  Sample sample;
  std::string error;
  EXPECT_FALSE(folder.Decode(0, &sample, &error));
  EXPECT_EQ(error, path + ": corrupt JPEG: the DHT segment at byte 2 declares 55552 bytes, past "
                          "the end of the file");
}

}  // namespace
}  // namespace psaq::model

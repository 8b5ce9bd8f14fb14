#include "model/data/image_folder.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>  // implementation in libstb.so
#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/testing/temp_dir.h"
#include "tests/testing/tensor_near.h"

namespace psaq::model {
namespace {

using ::psaq::testing::TempDir;

// uint8 [h, w, c] with a deterministic pattern.
at::Tensor Pattern(int64_t h, int64_t w, int64_t c, int seed) {
  at::Tensor t = (at::arange(h * w * c, at::kLong) * 37 + seed) % 256;
  return t.to(at::kByte).view({h, w, c}).contiguous();
}

void WritePng(const TempDir& dir, const std::string& rel, const at::Tensor& img) {
  dir.Write(rel, "");  // creates the parent directories
  const auto h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1)),
             c = static_cast<int>(img.size(2));
  ASSERT_NE(stbi_write_png(dir.Sub(rel).c_str(), w, h, c, img.data_ptr<uint8_t>(), w * c), 0)
      << rel;
}

void WriteJpg(const TempDir& dir, const std::string& rel, const at::Tensor& img) {
  dir.Write(rel, "");
  const auto h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1)),
             c = static_cast<int>(img.size(2));
  ASSERT_NE(stbi_write_jpg(dir.Sub(rel).c_str(), w, h, c, img.data_ptr<uint8_t>(), 100), 0) << rel;
}

// root/Dog/b.PNG (RGB), root/Dog/a.jpeg (flat grey JPEG), root/bird/broken.png (not an image),
// root/bird/x.png (RGBA), root/cat/z.png (grey), root/cat/sub/a.png (RGB), root/cat/notes.txt,
// root/readme.md (a file, not a class).
class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WritePng(dir_, "Dog/b.PNG", rgb_);
    WriteJpg(dir_, "Dog/a.jpeg", at::full({8, 8, 1}, 77, at::kByte));
    dir_.Write("bird/broken.png", "this is not a png");
    WritePng(dir_, "bird/x.png", rgba_);
    WritePng(dir_, "cat/z.png", grey_);
    WritePng(dir_, "cat/sub/a.png", Pattern(3, 2, 3, 9));
    dir_.Write("cat/notes.txt", "ignored");
    dir_.Write("readme.md", "ignored");
  }
  TempDir dir_;
  at::Tensor rgb_ = Pattern(5, 7, 3, 1);
  at::Tensor rgba_ = Pattern(4, 3, 4, 2);
  at::Tensor grey_ = Pattern(6, 4, 1, 3);
};

TEST_F(ImageFolderTest, ClassesAndFilesAreSortedLikeTorchvision) {
  ImageFolder folder(dir_.path().string());
  // Byte order: upper case before lower case.
  EXPECT_EQ(folder.class_names(), (std::vector<std::string>{"Dog", "bird", "cat"}));
  ASSERT_EQ(folder.size(), 6);
  // Within a class: by directory, then name, so cat/z.png (dir "cat") precedes cat/sub/a.png.
  const std::vector<std::string> order = {"Dog/a.jpeg", "Dog/b.PNG", "bird/broken.png",
                                          "bird/x.png", "cat/z.png", "cat/sub/a.png"};
  const std::vector<int64_t> labels = {0, 0, 1, 1, 2, 2};
  for (int64_t i = 0; i < folder.size(); ++i) {
    EXPECT_EQ(folder.SourceOf(i), dir_.Sub(order[i])) << i;
    EXPECT_EQ(folder.label(i), labels[i]) << i;
  }
  EXPECT_NE(folder.Describe().find("6 images, 3 classes"), std::string::npos);
}

TEST_F(ImageFolderTest, DecodesPngExactlyAndJpegClosely) {
  ImageFolder folder(dir_.path().string());
  Sample s;
  std::string error;
  ASSERT_TRUE(folder.Decode(1, &s, &error)) << error;  // Dog/b.PNG, RGB
  EXPECT_EQ(s.label, 0);
  EXPECT_TENSOR_IDENTICAL(s.image, rgb_);
  ASSERT_TRUE(folder.Decode(3, &s, &error)) << error;  // bird/x.png, RGBA: alpha dropped
  EXPECT_EQ(s.label, 1);
  EXPECT_TENSOR_IDENTICAL(s.image, rgba_.slice(2, 0, 3).contiguous());
  ASSERT_TRUE(folder.Decode(4, &s, &error)) << error;  // cat/z.png, grey: 1 channel
  EXPECT_EQ(s.label, 2);
  EXPECT_TENSOR_IDENTICAL(s.image, grey_);
  // Dog/a.jpeg, flat grey, quality 100; stb_image_write stores every JPEG as YCbCr, so it
  // decodes to 3 channels (as PIL opens it as RGB).
  ASSERT_TRUE(folder.Decode(0, &s, &error)) << error;
  ASSERT_EQ(s.image.sizes(), (std::vector<int64_t>{8, 8, 3}));
  EXPECT_LE((s.image.to(at::kInt) - 77).abs().max().item<int>(), 2);
}

TEST_F(ImageFolderTest, MalformedImageIsReportedWithItsPathNotThrown) {
  ImageFolder folder(dir_.path().string());
  Sample s;
  std::string error;
  EXPECT_FALSE(folder.Decode(2, &s, &error));
  EXPECT_NE(error.find(dir_.Sub("bird/broken.png")), std::string::npos) << error;
  // stb's own reason follows.
  EXPECT_NE(error.find(dir_.Sub("bird/broken.png") + ": cannot decode image: unknown image type"),
            std::string::npos)
      << error;
  // A file that disappeared after the scan is a decode failure too.
  std::filesystem::remove(dir_.Sub("cat/z.png"));
  EXPECT_FALSE(folder.Decode(4, &s, &error));
  EXPECT_NE(error.find(dir_.Sub("cat/z.png") + ": cannot open"), std::string::npos) << error;
  EXPECT_THROW(folder.Decode(6, &s, &error), c10::Error);
}

// The start of a PNG: signature and IHDR chunk declaring w x h, 8-bit grey (stb reads no further
// to learn the size, and checks no CRC).
std::string PngHeader(uint32_t w, uint32_t h) {
  std::string png = "\x89PNG\r\n\x1a\n";
  png += std::string("\0\0\0\x0dIHDR", 8);
  for (uint32_t v : {w, h}) {
    for (int shift = 24; shift >= 0; shift -= 8) png += static_cast<char>((v >> shift) & 0xff);
  }
  png += std::string("\x08\0\0\0\0", 5);  // bit depth 8, grey, deflate, no filter, no interlace
  png += std::string("\0\0\0\0", 4);      // CRC (unchecked)
  return png;
}

TEST_F(ImageFolderTest, ImagesOverTheLimitsAreRefusedBeforeReadingOrDecoding) {
  // 20000 x 20000 grey (400 Mpixel; stb would allocate it): refused from the header.
  dir_.Write("cat/huge.png", PngHeader(20000, 20000));
  // 8192 x 8192 is within the limit: only the missing pixel data fails, in stb.
  dir_.Write("cat/limit.png", PngHeader(8192, 8192));
  // A 3 GB file named .png (sparse: no disk used) is refused without being read.
  const std::string big = dir_.Write("cat/big.png", "");
  std::filesystem::resize_file(big, 3'000'000'000);
  ImageFolder folder(dir_.path().string());
  auto decode_error = [&](const std::string& rel) {
    for (int64_t i = 0; i < folder.size(); ++i) {
      if (folder.SourceOf(i) != dir_.Sub(rel)) continue;
      Sample s;
      std::string error;
      EXPECT_FALSE(folder.Decode(i, &s, &error)) << rel;
      return error;
    }
    ADD_FAILURE() << rel << " not in the folder";
    return std::string();
  };
  EXPECT_EQ(decode_error("cat/huge.png"),
            dir_.Sub("cat/huge.png") +
                ": image of 20000x20000 pixels, more than the 64 Mpixel an image may have");
  const std::string at_limit = decode_error("cat/limit.png");
  EXPECT_NE(at_limit.find(dir_.Sub("cat/limit.png") + ": cannot decode image: "), std::string::npos)
      << at_limit;
  EXPECT_EQ(decode_error("cat/big.png"),
            dir_.Sub("cat/big.png") +
                ": file of 3,000,000,000 bytes, more than the 1.0 GiB an image file may hold");
  EXPECT_EQ(kMaxImagePixels, 8192 * 8192);
  // A FIFO put in an image's place after the scan is refused, not waited on.
  std::filesystem::remove(dir_.Sub("cat/z.png"));
  ASSERT_EQ(mkfifo(dir_.Sub("cat/z.png").c_str(), 0600), 0);
  EXPECT_EQ(decode_error("cat/z.png"), dir_.Sub("cat/z.png") + ": not a regular file");
}

TEST_F(ImageFolderTest, ChecksumCoversContentAndNames) {
  const uint32_t before = ImageFolder(dir_.path().string()).ContentChecksum();
  // By definition: per file, the relative path, a 0 byte, the bytes.
  uLong expected = crc32(0L, Z_NULL, 0);
  for (const char* rel :
       {"Dog/a.jpeg", "Dog/b.PNG", "bird/broken.png", "bird/x.png", "cat/z.png", "cat/sub/a.png"}) {
    expected = crc32(expected, reinterpret_cast<const Bytef*>(rel), std::strlen(rel) + 1);
    std::ifstream in(dir_.Sub(rel), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    expected = crc32(expected, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
  }
  EXPECT_EQ(before, static_cast<uint32_t>(expected));
  EXPECT_EQ(ImageFolder(dir_.path().string()).ContentChecksum(), before);
  dir_.Write("bird/broken.png", "this is not a PNG");  // one byte differs
  const uint32_t edited = ImageFolder(dir_.path().string()).ContentChecksum();
  EXPECT_NE(edited, before);
  std::filesystem::rename(dir_.Sub("bird/broken.png"), dir_.Sub("bird/broken2.png"));
  EXPECT_NE(ImageFolder(dir_.path().string()).ContentChecksum(), edited);
}

TEST(ImageFolderErrorsTest, RejectsMissingEmptyAndClasslessRoots) {
  TempDir dir;
  auto expect_error = [](const std::string& root, const std::string& reason) {
    try {
      ImageFolder folder(root);
      ADD_FAILURE() << "no DatasetError for " << root;
    } catch (const DatasetError& e) {
      EXPECT_NE(std::string(e.what()).find(root + ": " + reason), std::string::npos) << e.what();
    }
  };
  expect_error(dir.Sub("missing"), "not a directory");
  expect_error(dir.path().string(), "no class subdirectories");  // empty
  dir.Write("loose.png", "x");
  expect_error(dir.path().string(), "no class subdirectories");  // files only
  dir.Write("a/one.png", "x");
  dir.Write("b/readme.txt", "x");
  dir.Write("c/.keep", "");
  expect_error(dir.path().string(), "no .jpg/.jpeg/.png file for the classes b, c");
}

TEST(ImageFolderErrorsTest, RecognisesImageExtensionsCaseInsensitively) {
  for (const char* name : {"a.jpg", "a.JPG", "b.jpeg", "c.JpEg", "d.png", "e.PNG", "x.y.png",
                           ".png"}) {  // torchvision accepts a bare extension too
    EXPECT_TRUE(IsImageFileName(name)) << name;
  }
  for (const char* name : {"a.gif", "png", "a.png.txt", "a.jp", "jpeg"}) {
    EXPECT_FALSE(IsImageFileName(name)) << name;
  }
}

}  // namespace
}  // namespace psaq::model

// Reading one image file with stb_image, under the limits every psaq dataset applies (ImageFolder,
// COCO): JPEG baseline and progressive, PNG 8/16-bit (16-bit reduced to 8).
// Limits, checked before the work they bound: the file size before the file is read
// (kMaxImageFileBytes), the dimensions its header declares before it is decoded
// (kMaxImagePixels). Only regular files are opened, without blocking (a FIFO in an image's place
// is refused, not waited on).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace psaq::model {

// Largest image file read: 1 GiB (stb_image takes lengths as int, 2 GiB at most). A 64 Mpixel
// 16-bit RGBA PNG stored without compression is 512 MiB.
constexpr int64_t kMaxImageFileBytes = int64_t{1} << 30;
// Most pixels an image may declare: 64 Mpixel (67,108,864, e.g. 8192 x 8192), decoded to at most
// 192 MiB of 8-bit RGB. A 400 KB PNG may declare 20000 x 20000 (1.2 GB decoded).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// How many channels a decoded image has.
enum class ImageChannels {
  kAsStored,  // grey and grey+alpha files to 1, everything else to 3 (alpha dropped, as PIL's
              // convert("RGB") does for colour files)
  kRgb,       // always 3 (grey replicated), as PIL's convert("RGB") and mmcv's imread "color"
};

// Decodes the file at `path` into *image (uint8 [H, W, C], CPU, contiguous). Returns false, nothing
// thrown, with *error = "<path>: <reason>" when the file cannot be opened, is not a regular file,
// is larger than kMaxImageFileBytes (refused before reading), declares more than kMaxImagePixels
// (refused before decoding), holds a JPEG Huffman table or PNG chunk length stb_image 2.27
// would trust (model/data/stb_precheck.h), or stb_image cannot decode it (the reason is stb's, e.g. "bad png
// sig"). Thread-safe.
bool DecodeImageFile(const std::string& path, ImageChannels channels, at::Tensor* image,
                     std::string* error);

// The width and height the file's header declares, decoding only the header (the file is read
// whole, for the JPEG check). Returns false with *error = "<path>: <reason>" as DecodeImageFile
// (except the pixel limit, which is not checked).
bool ReadImageSize(const std::string& path, int64_t* width, int64_t* height, std::string* error);

}  // namespace psaq::model

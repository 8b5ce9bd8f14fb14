// A directory of images laid out one subdirectory per class, as torchvision's ImageFolder reads it:
//   <root>/<class>/**/<file>.{jpg,jpeg,png}   (extensions case-insensitive)
// Classes are the subdirectories of root (symlinks to directories included, hidden ones too, as
// torchvision does) sorted by name (byte order); label = position in that order. Within a class,
// files are ordered as torchvision's sorted os.walk: by containing directory path, then by file
// name. Subdirectories of a class are searched recursively, without following symlinked
// subdirectories (a link cycle cannot hang the scan). Other files are ignored.
// Images are decoded with stb_image (JPEG baseline and progressive, PNG 8/16-bit; 16-bit is
// reduced to 8): grey and grey+alpha files to 1 channel, everything else to 3 (alpha dropped, as
// PIL's convert("RGB") does).
// Limits, checked before the work they bound (an image over one fails to decode, naming the file):
// the file size before the file is read (kMaxImageFileBytes), the dimensions its header declares
// before it is decoded (kMaxImagePixels).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/data/dataset.h"
#include "model/data/image_file.h"  // kMaxImageFileBytes, kMaxImagePixels

namespace psaq::model {

// True when `file_name` ends in .jpg, .jpeg or .png, in any letter case.
bool IsImageFileName(const std::string& file_name);

class ImageFolder final : public ImageDataset {
 public:
  // Scans `root` (file contents are not read). Throws DatasetError("<root>: <reason>") when root
  // is not a readable directory or has no class subdirectory, and DatasetError naming the classes
  // that hold no image file.
  explicit ImageFolder(const std::string& root);

  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  // Reads and decodes the file. Returns false with "<path>: <reason>" when the file cannot be
  // opened, is not a regular file, is larger than kMaxImageFileBytes (refused before reading),
  // declares more than kMaxImagePixels (refused before decoding), or stb_image cannot decode it
  // (the reason is stb's, e.g. "bad png sig").
  bool Decode(int64_t index, Sample* out, std::string* error) const override;
  // The file's path.
  std::string SourceOf(int64_t index) const override;
  std::string Describe() const override;
  // CRC-32 over, per sample in order, the path relative to root, a 0 byte, and the file's bytes
  // (the label is implied by the path). Streams every file (no size limit, 1 MiB buffered): costs
  // one pass over the dataset.
  uint32_t ContentChecksum() const override;

  const std::string& root() const { return root_; }
  int64_t label(int64_t index) const;  // REQUIRES: 0 <= index < size()

 private:
  std::string root_;
  std::vector<std::string> class_names_;
  std::vector<std::string> paths_;     // [size()] full paths
  std::vector<std::string> relative_;  // [size()] paths relative to root
  std::vector<int64_t> labels_;        // [size()]
};

}  // namespace psaq::model

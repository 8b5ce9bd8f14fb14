#include "model/data/coco_dataset.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "dist/base/format.h"
#include "model/data/image_file.h"
#include "model/file_limits.h"

namespace psaq::data {
namespace {

using model::DatasetError;
using nlohmann::json;

// A bad entry: the message without the file prefix ("annotation id 17: ...").
struct EntryError {
  std::string message;
};

[[noreturn]] void Bad(const std::string& entry, const std::string& reason) {
  throw EntryError{entry + ": " + reason};
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// JSON integers only (COCO writes ids and sizes as integers; 5.0 is refused as a mistyped value).
int64_t GetInt(const json& obj, const char* key, const std::string& entry) {
  const auto it = obj.find(key);
  if (it == obj.end()) Bad(entry, std::string("missing \"") + key + "\"");
  if (!it->is_number_integer()) {
    Bad(entry, std::string("\"") + key + "\" must be an integer, got " + it->type_name());
  }
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    Bad(entry, std::string("\"") + key + "\" is out of range");
  }
  return it->get<int64_t>();
}

double GetNumber(const json& value, const std::string& what, const std::string& entry) {
  if (!value.is_number()) Bad(entry, what + " must be a number, got " + value.type_name());
  const double v = value.get<double>();
  if (!std::isfinite(v)) Bad(entry, what + " is not finite");
  return v;
}

std::string GetString(const json& obj, const char* key, const std::string& entry) {
  const auto it = obj.find(key);
  if (it == obj.end()) Bad(entry, std::string("missing \"") + key + "\"");
  if (!it->is_string()) {
    Bad(entry, std::string("\"") + key + "\" must be a string, got " + it->type_name());
  }
  return it->get<std::string>();
}

// "image id 5", or "images[3]" when the entry has no usable id.
std::string EntryName(const json& v, const char* singular, const char* array, size_t i) {
  if (v.is_object()) {
    const auto it = v.find("id");
    if (it != v.end() && it->is_number_integer()) {
      return std::string(singular) + " id " + std::to_string(it->get<int64_t>());
    }
  }
  return std::string(array) + "[" + std::to_string(i) + "]";
}

const json& TopArray(const json& root, const char* key, const std::string& path) {
  const auto it = root.find(key);
  if (it == root.end()) throw DatasetError(path + ": missing top-level \"" + key + "\"");
  if (!it->is_array()) {
    throw DatasetError(path + ": \"" + key + "\" must be an array, got " + it->type_name());
  }
  return *it;
}

CocoImage ParseImage(const json& v, const std::string& entry) {
  if (!v.is_object()) Bad(entry, std::string("must be an object, got ") + v.type_name());
  CocoImage image;
  image.id = GetInt(v, "id", entry);
  image.file_name = GetString(v, "file_name", entry);
  if (image.file_name.empty()) Bad(entry, "\"file_name\" is empty");
  image.width = GetInt(v, "width", entry);
  image.height = GetInt(v, "height", entry);
  if (image.width <= 0 || image.height <= 0 || image.width > model::kMaxImagePixels ||
      image.height > model::kMaxImagePixels ||
      image.width * image.height > model::kMaxImagePixels) {  // each side first: no overflow
    Bad(entry, "size " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                   " is not positive or exceeds " + std::to_string(model::kMaxImagePixels) +
                   " pixels");
  }
  return image;
}

// The "segmentation" member: polygons or one of the two RLE forms, checked against the image.
void ParseSegmentation(const json& seg, const CocoImage& image, const std::string& entry,
                       CocoAnnotation* ann) {
  if (seg.is_array()) {
    if (seg.empty()) Bad(entry, "\"segmentation\" has no polygon");
    for (size_t p = 0; p < seg.size(); ++p) {
      const std::string what = "segmentation polygon " + std::to_string(p);
      if (!seg[p].is_array()) Bad(entry, what + " must be an array of numbers");
      if (seg[p].size() < 6 || seg[p].size() % 2 != 0) {
        Bad(entry, what + " has " + std::to_string(seg[p].size()) +
                       " coordinates (needs an even number >= 6)");
      }
      std::vector<double> xy;
      xy.reserve(seg[p].size());
      for (const json& c : seg[p]) {
        const double v = GetNumber(c, what + " coordinate", entry);
        if (std::fabs(v) > kMaxPolygonCoordinate) {
          Bad(entry,
              what + " coordinate " + Num(v) + " is outside +-" + Num(kMaxPolygonCoordinate));
        }
        xy.push_back(v);
      }
      ann->polygons.push_back(std::move(xy));
    }
    return;
  }
  if (!seg.is_object()) {
    Bad(entry,
        std::string("\"segmentation\" must be polygons or an RLE object, got ") + seg.type_name());
  }
  const auto size = seg.find("size");
  if (size == seg.end() || !size->is_array() || size->size() != 2 ||
      !(*size)[0].is_number_integer() || !(*size)[1].is_number_integer()) {
    Bad(entry, "RLE \"size\" must be [height, width]");
  }
  const int64_t h = (*size)[0].get<int64_t>(), w = (*size)[1].get<int64_t>();
  if (h != image.height || w != image.width) {
    Bad(entry, "RLE size [" + std::to_string(h) + ", " + std::to_string(w) + "] is not image " +
                   std::to_string(image.id) + "'s [" + std::to_string(image.height) + ", " +
                   std::to_string(image.width) + "]");
  }
  const auto counts = seg.find("counts");
  if (counts == seg.end()) Bad(entry, "RLE has no \"counts\"");
  ann->is_rle = true;
  ann->rle.height = h;
  ann->rle.width = w;
  if (counts->is_string()) {
    try {
      ann->rle = FromString(counts->get<std::string>(), h, w);
    } catch (const c10::Error& e) {
      Bad(entry, std::string("RLE counts: ") + e.what_without_backtrace());
    }
  } else if (counts->is_array()) {
    ann->rle.counts.reserve(counts->size());
    for (const json& c : *counts) {
      if (!c.is_number_integer() || c.get<int64_t>() < 0 ||
          c.get<int64_t>() > int64_t{std::numeric_limits<uint32_t>::max()}) {
        Bad(entry, "RLE counts must be integers in [0, 2^32)");
      }
      ann->rle.counts.push_back(static_cast<uint32_t>(c.get<int64_t>()));
    }
  } else {
    Bad(entry,
        std::string("RLE \"counts\" must be a string or an array, got ") + counts->type_name());
  }
  try {
    CheckRle(ann->rle, "RLE");
  } catch (const c10::Error& e) {
    Bad(entry, e.what_without_backtrace());
  }
}

}  // namespace

CocoDataset::CocoDataset(const std::string& annotation_file, const std::string& image_dir,
                         const CocoOptions& options)
    : annotation_file_(annotation_file), image_dir_(image_dir) {
  if (image_dir_.empty()) {
    const std::string parent = std::filesystem::path(annotation_file_).parent_path().string();
    image_dir_ = parent.empty() ? "." : parent;
  }
  const std::string& path = annotation_file_;
  json root;
  try {
    const std::string text = model::ReadRegularFile(path, static_cast<uint64_t>(kMaxCocoJsonBytes));
    model::CheckJsonDepth(text, path);
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    throw DatasetError(path + ": malformed JSON (byte " + std::to_string(e.byte) +
                       "): " + e.what());
  } catch (const DatasetError&) {
    throw;
  } catch (const std::exception& e) {
    throw DatasetError(e.what());  // ReadRegularFile and CheckJsonDepth name the file
  }
  if (!root.is_object()) {
    throw DatasetError(path + ": top level must be an object, got " + root.type_name());
  }
  const bool skip = options.on_bad_entry == BadEntryPolicy::kSkip;
  auto reject = [&](const EntryError& e, bool is_image) {
    if (!skip) throw DatasetError(path + ": " + e.message);
    (is_image ? skipped_images_ : skipped_annotations_) += 1;
    skip_reasons_.push_back(path + ": " + e.message);
  };

  // Categories: no skipping (a label map with a hole would shift every label after it).
  const json& cats = TopArray(root, "categories", path);
  std::map<int64_t, std::string> by_id;
  for (size_t i = 0; i < cats.size(); ++i) {
    const std::string entry = EntryName(cats[i], "category", "categories", i);
    try {
      if (!cats[i].is_object()) Bad(entry, "must be an object");
      const int64_t id = GetInt(cats[i], "id", entry);
      const std::string name = GetString(cats[i], "name", entry);
      if (!by_id.emplace(id, name).second) Bad(entry, "duplicate category id");
    } catch (const EntryError& e) {
      throw DatasetError(path + ": " + e.message);
    }
  }
  if (by_id.empty()) throw DatasetError(path + ": no categories");
  std::map<int64_t, int64_t> label_of;
  for (const auto& [id, name] : by_id) {
    label_of[id] = static_cast<int64_t>(categories_.size());
    categories_.push_back({id, name});
  }

  // Images: an image that is bad is left out with its annotations (kSkip).
  const json& images = TopArray(root, "images", path);
  std::set<int64_t> seen_images, skipped_image_ids;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string entry = EntryName(images[i], "image", "images", i);
    try {
      CocoImage image = ParseImage(images[i], entry);
      if (!seen_images.insert(image.id).second) Bad(entry, "duplicate image id");
      if (options.check_image_files) {
        int64_t w = 0, h = 0;
        std::string error;
        const std::string file = image_dir_ + "/" + image.file_name;
        if (!model::ReadImageSize(file, &w, &h, &error)) Bad(entry, error);
        if (w != image.width || h != image.height) {
          Bad(entry, file + " is " + std::to_string(w) + "x" + std::to_string(h) +
                         ", the JSON says " + std::to_string(image.width) + "x" +
                         std::to_string(image.height));
        }
      }
      image_index_[image.id] = static_cast<int64_t>(images_.size());
      images_.push_back(std::move(image));
    } catch (const EntryError& e) {
      if (images[i].is_object() && images[i].contains("id") &&
          images[i]["id"].is_number_integer()) {
        skipped_image_ids.insert(images[i]["id"].get<int64_t>());
      }
      reject(e, /*is_image=*/true);
    }
  }
  per_image_.resize(images_.size());

  const json& anns = TopArray(root, "annotations", path);
  std::set<int64_t> seen_annotations;
  for (size_t i = 0; i < anns.size(); ++i) {
    const json& v = anns[i];
    const std::string entry = EntryName(v, "annotation", "annotations", i);
    try {
      if (!v.is_object()) Bad(entry, std::string("must be an object, got ") + v.type_name());
      CocoAnnotation ann;
      ann.id = GetInt(v, "id", entry);
      if (!seen_annotations.insert(ann.id).second) Bad(entry, "duplicate annotation id");
      ann.image_id = GetInt(v, "image_id", entry);
      const auto image_it = image_index_.find(ann.image_id);
      if (image_it == image_index_.end()) {
        Bad(entry, skipped_image_ids.count(ann.image_id) != 0
                       ? "its image id " + std::to_string(ann.image_id) + " was skipped"
                       : "unknown image id " + std::to_string(ann.image_id));
      }
      const CocoImage& image = images_[static_cast<size_t>(image_it->second)];
      ann.category_id = GetInt(v, "category_id", entry);
      const auto label_it = label_of.find(ann.category_id);
      if (label_it == label_of.end()) {
        Bad(entry, "unknown category id " + std::to_string(ann.category_id));
      }
      ann.label = label_it->second;
      const auto bbox = v.find("bbox");
      if (bbox == v.end()) Bad(entry, "missing \"bbox\"");
      if (!bbox->is_array() || bbox->size() != 4) Bad(entry, "\"bbox\" must be [x, y, w, h]");
      for (size_t k = 0; k < 4; ++k) ann.bbox[k] = GetNumber((*bbox)[k], "bbox value", entry);
      const auto [x, y, w, h] = ann.bbox;
      const std::string box =
          "bbox [" + Num(x) + ", " + Num(y) + ", " + Num(w) + ", " + Num(h) + "]";
      if (w <= 0 || h <= 0) Bad(entry, box + " has a non-positive size");
      if (x < -kCocoBoxSlack || y < -kCocoBoxSlack ||
          x + w > static_cast<double>(image.width) + kCocoBoxSlack ||
          y + h > static_cast<double>(image.height) + kCocoBoxSlack) {
        Bad(entry, box + " outside image " + std::to_string(image.id) + " (" +
                       std::to_string(image.width) + "x" + std::to_string(image.height) + ")");
      }
      const auto area = v.find("area");
      if (area == v.end()) Bad(entry, "missing \"area\"");
      ann.area = GetNumber(*area, "\"area\"", entry);
      if (ann.area < 0) Bad(entry, "\"area\" " + Num(ann.area) + " is negative");
      const auto crowd = v.find("iscrowd");
      if (crowd != v.end()) {
        if (crowd->is_boolean()) {
          ann.iscrowd = crowd->get<bool>();
        } else if (crowd->is_number_integer() &&
                   (crowd->get<int64_t>() == 0 || crowd->get<int64_t>() == 1)) {
          ann.iscrowd = crowd->get<int64_t>() == 1;
        } else {
          Bad(entry, "\"iscrowd\" must be 0 or 1");
        }
      }
      const auto seg = v.find("segmentation");
      if (seg == v.end()) Bad(entry, "missing \"segmentation\"");
      ParseSegmentation(*seg, image, entry, &ann);
      per_image_[static_cast<size_t>(image_it->second)].push_back(
          static_cast<int64_t>(annotations_.size()));
      annotations_.push_back(std::move(ann));
    } catch (const EntryError& e) {
      reject(e, /*is_image=*/false);
    }
  }
}

const CocoImage& CocoDataset::image(int64_t index) const {
  TORCH_CHECK(index >= 0 && index < size(), "COCO image index ", index, " out of range [0, ",
              size(), ")");
  return images_[static_cast<size_t>(index)];
}

const std::vector<int64_t>& CocoDataset::annotations_of(int64_t index) const {
  image(index);  // range check
  return per_image_[static_cast<size_t>(index)];
}

int64_t CocoDataset::IndexOfImageId(int64_t image_id) const {
  const auto it = image_index_.find(image_id);
  return it == image_index_.end() ? -1 : it->second;
}

std::string CocoDataset::ImagePath(int64_t index) const {
  return image_dir_ + "/" + image(index).file_name;
}

bool CocoDataset::Decode(int64_t index, CocoSample* out, std::string* error) const {
  TORCH_CHECK(out != nullptr && error != nullptr, "Decode: null output");
  const CocoImage& info = image(index);
  const std::string path = ImagePath(index);
  if (!model::DecodeImageFile(path, model::ImageChannels::kRgb, &out->image, error)) return false;
  if (out->image.size(0) != info.height || out->image.size(1) != info.width) {
    *error = path + ": decoded to " + std::to_string(out->image.size(1)) + "x" +
             std::to_string(out->image.size(0)) + ", the JSON says " + std::to_string(info.width) +
             "x" + std::to_string(info.height);
    return false;
  }
  const auto& positions = per_image_[static_cast<size_t>(index)];
  const auto n = static_cast<int64_t>(positions.size());
  out->boxes = at::empty({n, 4}, at::kFloat);
  out->labels = at::empty({n}, at::kLong);
  out->iscrowd = at::empty({n}, at::kBool);
  out->image_id = info.id;
  out->annotation_ids.clear();
  auto boxes = out->boxes.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const CocoAnnotation& a = annotations_[static_cast<size_t>(positions[static_cast<size_t>(i)])];
    // x1y1x2y2 as mmdetection's CocoDataset: [x, y, x + w, y + h].
    boxes[i][0] = static_cast<float>(a.bbox[0]);
    boxes[i][1] = static_cast<float>(a.bbox[1]);
    boxes[i][2] = static_cast<float>(a.bbox[0] + a.bbox[2]);
    boxes[i][3] = static_cast<float>(a.bbox[1] + a.bbox[3]);
    out->labels[i] = a.label;
    out->iscrowd[i] = a.iscrowd;
    out->annotation_ids.push_back(a.id);
  }
  return true;
}

Rle CocoDataset::MaskRle(const CocoAnnotation& annotation) const {
  if (annotation.is_rle) return annotation.rle;
  const int64_t index = IndexOfImageId(annotation.image_id);
  TORCH_CHECK(index >= 0, "annotation ", annotation.id, ": unknown image id ", annotation.image_id);
  const CocoImage& info = images_[static_cast<size_t>(index)];
  return FromPolygons(annotation.polygons, info.height, info.width);
}

at::Tensor CocoDataset::Masks(int64_t index) const {
  const CocoImage& info = image(index);
  const auto& positions = per_image_[static_cast<size_t>(index)];
  const auto n = static_cast<int64_t>(positions.size());
  TORCH_CHECK(n <= kMaxMaskBytes / (info.width * info.height), annotation_file_, ": image id ",
              info.id, ": ", n, " masks of ", info.width, "x", info.height, " exceed the ",
              kMaxMaskBytes, " bytes one image's masks may take");
  at::Tensor masks =
      at::empty({static_cast<int64_t>(positions.size()), info.height, info.width}, at::kBool);
  for (size_t i = 0; i < positions.size(); ++i) {
    masks[static_cast<int64_t>(i)].copy_(
        data::Decode(MaskRle(annotations_[static_cast<size_t>(positions[i])])));
  }
  return masks;
}

std::string CocoDataset::Describe() const {
  std::string s = "COCO " + annotation_file_ + ": " + base::FormatCount(size()) + " images, " +
                  base::FormatCount(static_cast<int64_t>(annotations_.size())) + " annotations, " +
                  std::to_string(num_classes()) + " categories";
  if (skipped_images_ + skipped_annotations_ > 0) {
    s += " (skipped " + std::to_string(skipped_images_) + " images, " +
         std::to_string(skipped_annotations_) + " annotations)";
  }
  return s;
}

}  // namespace psaq::data

#include "model/data/coco_eval_json.h"

#include <c10/util/Exception.h>

#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "dist/base/atomic_file.h"

namespace psaq::data {
namespace {

using Json = nlohmann::json;

[[noreturn]] void Fail(const std::string& path, const std::string& entry,
                       const std::string& reason) {
  throw std::runtime_error(path + ": " + entry + ": " + reason);
}

Json Parse(const std::string& path) {
  const std::string text = base::ReadTextFile(path);
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // nlohmann's message names the byte; keep it on one line.
    throw std::runtime_error(path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
}

const Json& Field(const std::string& path, const std::string& entry, const Json& object,
                  const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) Fail(path, entry, std::string("missing '") + key + "'");
  return *it;
}

int64_t Integer(const std::string& path, const std::string& entry, const Json& object,
                const char* key) {
  const Json& v = Field(path, entry, object, key);
  if (!v.is_number_integer()) Fail(path, entry, std::string("'") + key + "' must be an integer");
  return v.get<int64_t>();
}

double Number(const std::string& path, const std::string& entry, const Json& object,
              const char* key) {
  const Json& v = Field(path, entry, object, key);
  if (!v.is_number()) Fail(path, entry, std::string("'") + key + "' must be a number");
  return v.get<double>();
}

std::array<double, 4> Box(const std::string& path, const std::string& entry, const Json& object) {
  const Json& v = Field(path, entry, object, "bbox");
  if (!v.is_array() || v.size() != 4) Fail(path, entry, "'bbox' must be 4 numbers");
  std::array<double, 4> box{};
  for (size_t i = 0; i < 4; ++i) {
    if (!v[i].is_number()) Fail(path, entry, "'bbox' must be 4 numbers");
    box[i] = v[i].get<double>();
  }
  if (box[2] < 0 || box[3] < 0) Fail(path, entry, "'bbox' has a negative width or height");
  return box;
}

// A "segmentation": polygons [[x0, y0, x1, y1, ...], ...] rasterised at the image's size, or an
// RLE {"size": [h, w], "counts": [runs...] or "compressed string"} at its own size -- as
// pycocotools' annToRLE / frPyObjects read them. The codec's errors get the path and entry.
Rle Segmentation(const std::string& path, const std::string& entry, const Json& segm,
                 int64_t height, int64_t width) {
  try {
    if (segm.is_array()) {
      if (segm.empty()) Fail(path, entry, "'segmentation' has no polygon");
      if (height <= 0 || width <= 0) {
        Fail(path, entry, "polygon 'segmentation' on an image without height and width");
      }
      std::vector<std::vector<double>> polygons;
      for (const Json& polygon : segm) {
        if (!polygon.is_array()) Fail(path, entry, "'segmentation' polygons must be arrays");
        std::vector<double> xy;
        for (const Json& v : polygon) {
          if (!v.is_number()) Fail(path, entry, "'segmentation' polygons must hold numbers");
          xy.push_back(v.get<double>());
        }
        polygons.push_back(std::move(xy));
      }
      return FromPolygons(polygons, height, width);
    }
    if (!segm.is_object()) Fail(path, entry, "'segmentation' must be polygons or an RLE object");
    const Json& size = Field(path, entry, segm, "size");
    if (!size.is_array() || size.size() != 2 || !size[0].is_number_integer() ||
        !size[1].is_number_integer()) {
      Fail(path, entry, "'segmentation' 'size' must be [height, width]");
    }
    const Json& counts = Field(path, entry, segm, "counts");
    Rle rle;
    if (counts.is_string()) {
      rle = FromString(counts.get<std::string>(), size[0].get<int64_t>(), size[1].get<int64_t>());
    } else if (counts.is_array()) {
      rle.height = size[0].get<int64_t>();
      rle.width = size[1].get<int64_t>();
      for (const Json& c : counts) {
        if (!c.is_number_unsigned() || c.get<uint64_t>() > UINT32_MAX) {
          Fail(path, entry, "'segmentation' 'counts' must be run lengths in [0, 2^32)");
        }
        rle.counts.push_back(static_cast<uint32_t>(c.get<uint64_t>()));
      }
    } else {
      Fail(path, entry, "'segmentation' 'counts' must be a string or an array");
    }
    CheckRle(rle, "'segmentation'");
    return rle;
  } catch (const c10::Error& e) {
    Fail(path, entry, e.what_without_backtrace());
  }
}

const Json& Array(const std::string& path, const Json& root, const char* key) {
  const auto it = root.find(key);
  if (it == root.end() || !it->is_array()) {
    throw std::runtime_error(path + ": missing '" + key + "' array");
  }
  return *it;
}

}  // namespace

CocoGroundTruth LoadCocoGroundTruth(const std::string& path) {
  const Json root = Parse(path);
  if (!root.is_object()) throw std::runtime_error(path + ": not a COCO instances object");
  CocoGroundTruth gt;
  std::unordered_map<int64_t, size_t> image_index;
  const Json& images = Array(path, root, "images");
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string entry = "images[" + std::to_string(i) + "]";
    if (!images[i].is_object()) Fail(path, entry, "not an object");
    CocoGtImage image;
    image.id = Integer(path, entry, images[i], "id");
    if (images[i].contains("height")) image.height = Integer(path, entry, images[i], "height");
    if (images[i].contains("width")) image.width = Integer(path, entry, images[i], "width");
    if (!image_index.emplace(image.id, gt.images.size()).second) {
      Fail(path, entry, "duplicate image id " + std::to_string(image.id));
    }
    gt.images.push_back(std::move(image));
  }
  std::set<int64_t> categories;
  const Json& cats = Array(path, root, "categories");
  for (size_t i = 0; i < cats.size(); ++i) {
    const std::string entry = "categories[" + std::to_string(i) + "]";
    if (!cats[i].is_object()) Fail(path, entry, "not an object");
    const int64_t id = Integer(path, entry, cats[i], "id");
    if (!categories.insert(id).second)
      Fail(path, entry, "duplicate category id " + std::to_string(id));
    gt.category_ids.push_back(id);
  }
  const Json& anns = Array(path, root, "annotations");
  for (size_t i = 0; i < anns.size(); ++i) {
    const std::string entry = "annotations[" + std::to_string(i) + "]";
    const Json& a = anns[i];
    if (!a.is_object()) Fail(path, entry, "not an object");
    CocoGtObject object;
    object.id = Integer(path, entry, a, "id");
    const int64_t image_id = Integer(path, entry, a, "image_id");
    object.category_id = Integer(path, entry, a, "category_id");
    object.bbox = Box(path, entry, a);
    object.area = Number(path, entry, a, "area");
    if (a.contains("iscrowd")) {
      const int64_t crowd = Integer(path, entry, a, "iscrowd");
      if (crowd != 0 && crowd != 1) Fail(path, entry, "'iscrowd' must be 0 or 1");
      object.iscrowd = crowd == 1;
    }
    const auto it = image_index.find(image_id);
    if (it == image_index.end()) Fail(path, entry, "unknown image_id " + std::to_string(image_id));
    if (a.contains("segmentation")) {
      const CocoGtImage& image = gt.images[it->second];
      object.mask = Segmentation(path, entry, a["segmentation"], image.height, image.width);
    }
    if (categories.count(object.category_id) == 0) {
      Fail(path, entry, "unknown category_id " + std::to_string(object.category_id));
    }
    gt.images[it->second].objects.push_back(object);
  }
  return gt;
}

std::vector<CocoDetection> LoadCocoDetections(const std::string& path, const CocoGroundTruth& gt) {
  const Json root = Parse(path);
  if (!root.is_array()) throw std::runtime_error(path + ": a COCO results file is a JSON array");
  std::unordered_map<int64_t, const CocoGtImage*> images;
  for (const CocoGtImage& image : gt.images) images[image.id] = &image;
  // loadRes: results whose first entry has a (non-empty) box all carry boxes and their area is
  // the box's; otherwise they are masks, with the mask's area and box.
  const bool boxes = !root.empty() && root[0].is_object() && root[0].contains("bbox") &&
                     !(root[0]["bbox"].is_array() && root[0]["bbox"].empty());
  std::vector<CocoDetection> out;
  out.reserve(root.size());
  for (size_t i = 0; i < root.size(); ++i) {
    const std::string entry = "[" + std::to_string(i) + "]";
    const Json& r = root[i];
    if (!r.is_object()) Fail(path, entry, "not an object");
    CocoDetection d;
    d.image_id = Integer(path, entry, r, "image_id");
    if (images.count(d.image_id) == 0) {
      Fail(path, entry,
           "image_id " + std::to_string(d.image_id) + " is not an image of the ground truth");
    }
    d.category_id = Integer(path, entry, r, "category_id");
    d.score = Number(path, entry, r, "score");
    const CocoGtImage& image = *images.at(d.image_id);
    if (r.contains("segmentation") || !boxes) {
      d.mask = Segmentation(path, entry, Field(path, entry, r, "segmentation"), image.height,
                            image.width);
    }
    if (boxes) {
      d.bbox = Box(path, entry, r);
    } else {
      d.area = static_cast<double>(Area(*d.mask));
      d.bbox = r.contains("bbox") ? Box(path, entry, r) : ToBbox(*d.mask);
    }
    out.push_back(d);
  }
  return out;
}

}  // namespace psaq::data

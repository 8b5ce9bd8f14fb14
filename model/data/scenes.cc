#include "model/data/scenes.h"

#include <ATen/ATen.h>
#include <stb/stb_image_write.h>  // implementation compiled into libstb.so; do not define it here
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <vector>

#include "dist/base/atomic_file.h"
#include "model/data/coco_dataset.h"  // kMaxCocoJsonBytes
#include "model/data/coco_mask.h"
#include "model/data/image_file.h"
#include "model/file_limits.h"

namespace psaq::data {
namespace {

using nlohmann::json;

// Tries per item before it is left out (see scenes.h).
constexpr int kPlacementTries = 10;
// Background value-noise lattice spacing and amplitude, and per-pixel grain.
constexpr int64_t kNoiseCell = 16;
constexpr int kNoiseAmplitude = 40;
constexpr int kGrain = 8;

// splitmix64: a well-mixed seed for image `index` of a split, independent of the other images.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [lo, hi] (std's distributions are not specified bit-for-bit across libraries; the
// modulo bias, below 2^-50 here, does not matter).
int64_t RandInt(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo + 1));
}

struct Item {
  std::vector<uint8_t> value;  // [h * w] scaled Fashion-MNIST values
  int64_t h = 0, w = 0;
  std::array<int, 3> tint{};
};

// A random item: a Fashion-MNIST image cropped to its pixels above the threshold, scaled
// (bilinear, half-pixel centres) so its longer side is `size`.
Item MakeItem(const uint8_t* src, int64_t rows, int64_t cols, int64_t threshold, int64_t size) {
  int64_t y0 = rows, y1 = -1, x0 = cols, x1 = -1;
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t x = 0; x < cols; ++x) {
      if (src[y * cols + x] > threshold) {
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
      }
    }
  }
  Item item;
  if (y1 < 0) return item;  // nothing above the threshold
  const int64_t h0 = y1 - y0 + 1, w0 = x1 - x0 + 1, longer = std::max(h0, w0);
  item.h = std::max<int64_t>(1, (h0 * size + longer / 2) / longer);
  item.w = std::max<int64_t>(1, (w0 * size + longer / 2) / longer);
  item.value.resize(static_cast<size_t>(item.h * item.w));
  auto sample = [&](int64_t y, int64_t x) { return double(src[(y0 + y) * cols + (x0 + x)]); };
  for (int64_t y = 0; y < item.h; ++y) {
    const double sy = std::clamp((y + 0.5) * double(h0) / double(item.h) - 0.5, 0.0, h0 - 1.0);
    const auto ya = static_cast<int64_t>(sy);
    const int64_t yb = std::min(ya + 1, h0 - 1);
    const double wy = sy - double(ya);
    for (int64_t x = 0; x < item.w; ++x) {
      const double sx = std::clamp((x + 0.5) * double(w0) / double(item.w) - 0.5, 0.0, w0 - 1.0);
      const auto xa = static_cast<int64_t>(sx);
      const int64_t xb = std::min(xa + 1, w0 - 1);
      const double wx = sx - double(xa);
      const double top = sample(ya, xa) * (1 - wx) + sample(ya, xb) * wx;
      const double bottom = sample(yb, xa) * (1 - wx) + sample(yb, xb) * wx;
      item.value[static_cast<size_t>(y * item.w + x)] =
          static_cast<uint8_t>(top * (1 - wy) + bottom * wy + 0.5);
    }
  }
  return item;
}

// Integer value noise over a random base colour, plus per-pixel grain: [C * C * 3] RGB.
std::vector<uint8_t> Background(std::mt19937_64& rng, int64_t c) {
  std::array<int, 3> base{};
  for (int& b : base) b = static_cast<int>(RandInt(rng, 30, 170));
  const int64_t cells = c / kNoiseCell + 2;
  std::vector<int> lattice(static_cast<size_t>(cells * cells));
  for (int& v : lattice) v = static_cast<int>(RandInt(rng, -kNoiseAmplitude, kNoiseAmplitude));
  std::vector<uint8_t> rgb(static_cast<size_t>(c * c * 3));
  const int64_t n = kNoiseCell;
  for (int64_t y = 0; y < c; ++y) {
    const int64_t gy = y / n, fy = y % n;
    for (int64_t x = 0; x < c; ++x) {
      const int64_t gx = x / n, fx = x % n;
      const int64_t a = lattice[gy * cells + gx], b = lattice[gy * cells + gx + 1];
      const int64_t d = lattice[(gy + 1) * cells + gx], e = lattice[(gy + 1) * cells + gx + 1];
      const int64_t field =
          (a * (n - fx) * (n - fy) + b * fx * (n - fy) + d * (n - fx) * fy + e * fx * fy) / (n * n);
      const int64_t grain = RandInt(rng, -kGrain, kGrain);
      for (int k = 0; k < 3; ++k) {
        rgb[static_cast<size_t>((y * c + x) * 3 + k)] =
            static_cast<uint8_t>(std::clamp<int64_t>(base[k] + field + grain, 0, 255));
      }
    }
  }
  return rgb;
}

struct Placed {
  int64_t label = 0;
  int64_t pasted = 0;   // pixels pasted
  int64_t visible = 0;  // of those, not covered by a later item
};

struct Scene {
  std::vector<uint8_t> rgb;    // [C * C * 3]
  std::vector<int16_t> owner;  // [C * C] index into items, -1 = background
  std::vector<Placed> items;
};

Scene MakeScene(const ScenesOptions& o, const at::Tensor& images, const uint8_t* labels,
                uint64_t image_seed) {
  std::mt19937_64 rng(image_seed);
  const int64_t c = o.canvas_size;
  Scene scene;
  scene.rgb = Background(rng, c);
  scene.owner.assign(static_cast<size_t>(c * c), -1);
  const int64_t count = RandInt(rng, o.min_items, o.max_items);
  const int64_t n = images.size(0), rows = images.size(1), cols = images.size(2);
  const uint8_t* pixels = images.data_ptr<uint8_t>();
  for (int64_t k = 0; k < count; ++k) {
    const int64_t pick = RandInt(rng, 0, n - 1);
    const int64_t size = RandInt(rng, o.min_item_size, o.max_item_size);
    Item item = MakeItem(pixels + pick * rows * cols, rows, cols, o.mask_threshold, size);
    for (int& t : item.tint) t = static_cast<int>(RandInt(rng, 60, 255));
    if (item.value.empty()) continue;
    std::vector<int64_t> covered(scene.items.size());
    int64_t x0 = -1, y0 = -1;
    for (int attempt = 0; attempt < kPlacementTries && x0 < 0; ++attempt) {
      const int64_t x = RandInt(rng, 0, c - item.w), y = RandInt(rng, 0, c - item.h);
      std::fill(covered.begin(), covered.end(), 0);
      for (int64_t iy = 0; iy < item.h; ++iy) {
        for (int64_t ix = 0; ix < item.w; ++ix) {
          if (item.value[static_cast<size_t>(iy * item.w + ix)] <= o.mask_threshold) continue;
          const int16_t owner = scene.owner[static_cast<size_t>((y + iy) * c + x + ix)];
          if (owner >= 0) ++covered[static_cast<size_t>(owner)];
        }
      }
      bool ok = true;
      for (size_t j = 0; j < covered.size(); ++j) {
        const Placed& p = scene.items[j];
        // (visible - covered) / pasted >= min_visible_fraction, without the division.
        ok = ok && double(p.visible - covered[j]) >= o.min_visible_fraction * double(p.pasted);
      }
      if (ok) {
        x0 = x;
        y0 = y;
      }
    }
    if (x0 < 0) continue;  // every try hid too much of an earlier item
    Placed placed;
    placed.label = labels[pick];
    const auto index = static_cast<int16_t>(scene.items.size());
    for (int64_t iy = 0; iy < item.h; ++iy) {
      for (int64_t ix = 0; ix < item.w; ++ix) {
        const int v = item.value[static_cast<size_t>(iy * item.w + ix)];
        if (v <= o.mask_threshold) continue;
        const size_t at = static_cast<size_t>((y0 + iy) * c + x0 + ix);
        if (scene.owner[at] >= 0) --scene.items[static_cast<size_t>(scene.owner[at])].visible;
        scene.owner[at] = index;
        for (int ch = 0; ch < 3; ++ch) {
          scene.rgb[at * 3 + static_cast<size_t>(ch)] =
              static_cast<uint8_t>(item.tint[ch] * v / 255);
        }
        ++placed.pasted;
      }
    }
    placed.visible = placed.pasted;
    scene.items.push_back(placed);
  }
  return scene;
}

// The Rle of the pixels owned by `k` (as Encode of that mask; no tensor ops: this runs per item,
// and LibTorch's thread pool costs more than the scan on 224x224 masks).
Rle OwnerMask(const std::vector<int16_t>& owner, int64_t c, int16_t k) {
  Rle rle;
  rle.height = c;
  rle.width = c;
  bool prev = false;
  uint32_t run = 0;
  for (int64_t x = 0; x < c; ++x) {  // column-major, as COCO's runs
    for (int64_t y = 0; y < c; ++y) {
      const bool set = owner[static_cast<size_t>(y * c + x)] == k;
      if (set != prev) {
        rle.counts.push_back(run);
        run = 0;
        prev = set;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

void AppendToString(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

std::string EncodePng(const std::vector<uint8_t>& rgb, int64_t c) {
  std::string png;
  const int ok =
      stbi_write_png_to_func(&AppendToString, &png, static_cast<int>(c), static_cast<int>(c), 3,
                             rgb.data(), static_cast<int>(c * 3));
  if (ok == 0) throw std::runtime_error("stb_image_write could not encode a PNG");
  return png;
}

uLong CrcAppend(uLong crc, const std::string& bytes) {
  // zlib takes lengths as uInt: feed large buffers in pieces.
  size_t done = 0;
  while (done < bytes.size()) {
    const size_t piece = std::min<size_t>(bytes.size() - done, size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data() + done), static_cast<uInt>(piece));
    done += piece;
  }
  return crc;
}

std::string FormatCrc(uLong crc) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "crc32:%08lx", crc & 0xffffffffUL);
  return buf;
}

// CRC-32 of the JSON's bytes, then of each image's CRC-32 as 4 big-endian bytes.
std::string CombineChecksum(const std::string& json_text, const std::vector<uint32_t>& images) {
  uLong crc = CrcAppend(crc32(0L, Z_NULL, 0), json_text);
  for (const uint32_t image : images) {
    const unsigned char b[4] = {
        static_cast<unsigned char>(image >> 24), static_cast<unsigned char>(image >> 16),
        static_cast<unsigned char>(image >> 8), static_cast<unsigned char>(image)};
    crc = crc32(crc, b, 4);
  }
  return FormatCrc(crc);
}

std::string ImageFileName(const std::string& split, int64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%06lld.png", static_cast<long long>(id));
  return split + "/" + buf;
}

}  // namespace

void ValidateScenesOptions(const ScenesOptions& o) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (o.split != "train" && o.split != "val") fail("split '" + o.split + "': must be train or val");
  if (o.num_images < 1 || o.num_images > kMaxScenesImages) {
    fail("num_images " + std::to_string(o.num_images) + ": must be in [1, " +
         std::to_string(kMaxScenesImages) + "]");
  }
  if (o.canvas_size < 32 || o.canvas_size > 4096) {
    fail("canvas_size " + std::to_string(o.canvas_size) + ": must be in [32, 4096]");
  }
  if (o.min_items < 1 || o.max_items < o.min_items || o.max_items > 32) {
    fail("items " + std::to_string(o.min_items) + ".." + std::to_string(o.max_items) +
         ": must satisfy 1 <= min <= max <= 32");
  }
  if (o.min_item_size < 4 || o.max_item_size < o.min_item_size || o.max_item_size > o.canvas_size) {
    fail("item sizes " + std::to_string(o.min_item_size) + ".." + std::to_string(o.max_item_size) +
         ": must satisfy 4 <= min <= max <= canvas_size (" + std::to_string(o.canvas_size) + ")");
  }
  if (o.mask_threshold < 0 || o.mask_threshold > 254) {
    fail("mask_threshold " + std::to_string(o.mask_threshold) + ": must be in [0, 254]");
  }
  if (!(o.min_visible_fraction > 0 && o.min_visible_fraction <= 1)) {
    fail("min_visible_fraction " + std::to_string(o.min_visible_fraction) + ": must be in (0, 1]");
  }
}

ScenesSummary MakeScenes(const ScenesOptions& o, const std::string& out_dir) {
  ValidateScenesOptions(o);
  const model::FashionMnist source(o.fashion_mnist_dir, o.split == "train" ? "train" : "test");
  const at::Tensor images = source.images().contiguous();
  const at::Tensor labels_tensor = source.labels().contiguous();
  const uint8_t* labels = labels_tensor.data_ptr<uint8_t>();
  const auto& class_names = model::FashionMnistClassNames();

  base::MakeDirs(out_dir + "/" + o.split);
  ScenesSummary summary;
  summary.json_path = out_dir + "/instances_" + o.split + ".json";
  summary.manifest_path = out_dir + "/scenes_" + o.split + ".manifest.json";
  json coco_images = json::array(), annotations = json::array(), categories = json::array();
  for (size_t k = 0; k < class_names.size(); ++k) {
    categories.push_back({{"id", k + 1}, {"name", class_names[k]}, {"supercategory", "fashion"}});
  }
  std::vector<uint32_t> image_crcs;  // per image: CRC-32 of file_name, 0 byte, PNG bytes
  const uint64_t split_code = o.split == "train" ? 1 : 2;
  const int64_t c = o.canvas_size;
  for (int64_t i = 0; i < o.num_images; ++i) {
    const Scene scene =
        MakeScene(o, images, labels, Mix(Mix(o.seed) ^ Mix(split_code << 40 ^ uint64_t(i))));
    const int64_t image_id = i + 1;
    const std::string file_name = ImageFileName(o.split, image_id);
    const std::string png = EncodePng(scene.rgb, c);
    base::WriteFileAtomic(out_dir + "/" + file_name, png);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = CrcAppend(crc, file_name + std::string(1, '\0'));
    image_crcs.push_back(static_cast<uint32_t>(CrcAppend(crc, png)));
    coco_images.push_back(
        {{"id", image_id}, {"file_name", file_name}, {"width", c}, {"height", c}});
    // Masks: each item's pixels that no later item covers.
    for (size_t k = 0; k < scene.items.size(); ++k) {
      const Rle rle = OwnerMask(scene.owner, c, static_cast<int16_t>(k));
      const auto box = ToBbox(rle);
      const int64_t area = Area(rle);
      summary.small += area < 32 * 32;
      summary.medium += area >= 32 * 32 && area < 96 * 96;
      summary.large += area >= 96 * 96;
      annotations.push_back(
          {{"id", static_cast<int64_t>(annotations.size()) + 1},
           {"image_id", image_id},
           {"category_id", scene.items[k].label + 1},
           {"bbox", {int64_t(box[0]), int64_t(box[1]), int64_t(box[2]), int64_t(box[3])}},
           {"area", area},
           {"iscrowd", 0},
           {"segmentation", {{"counts", ToString(rle)}, {"size", {c, c}}}}});
    }
  }
  summary.num_images = o.num_images;
  summary.num_annotations = static_cast<int64_t>(annotations.size());
  const json coco = {
      {"info",
       {{"description", "psaq make-scenes: Fashion-MNIST items on textured canvases"},
        {"split", o.split},
        {"seed", o.seed}}},
      {"licenses", json::array()},
      {"images", coco_images},
      {"annotations", annotations},
      {"categories", categories}};
  const std::string text = coco.dump();
  if (static_cast<int64_t>(text.size()) > kMaxCocoJsonBytes) {
    throw std::runtime_error(summary.json_path + ": " + std::to_string(text.size()) +
                             " bytes, more than the " + std::to_string(kMaxCocoJsonBytes) +
                             " a COCO file may have (make fewer images)");
  }
  base::WriteFileAtomic(summary.json_path, text);
  summary.checksum = CombineChecksum(text, image_crcs);
  const json manifest = {
      {"split", o.split},
      {"seed", o.seed},
      {"num_images", summary.num_images},
      {"num_annotations", summary.num_annotations},
      {"canvas_size", o.canvas_size},
      {"items", {o.min_items, o.max_items}},
      {"item_size", {o.min_item_size, o.max_item_size}},
      {"mask_threshold", o.mask_threshold},
      {"min_visible_fraction", o.min_visible_fraction},
      {"area_ranges",
       {{"small", summary.small}, {"medium", summary.medium}, {"large", summary.large}}},
      {"annotations_file", "instances_" + o.split + ".json"},
      {"checksum", summary.checksum},
      {"checksum_covers",
       "crc32 (zlib) of the annotations file's bytes followed by, per image in id order, the "
       "big-endian crc32 of its file_name, a 0 byte and its PNG bytes"}};
  base::WriteFileAtomic(summary.manifest_path, manifest.dump(2) + "\n");
  return summary;
}

std::string ScenesChecksum(const std::string& out_dir, const std::string& split) {
  const std::string path = out_dir + "/instances_" + split + ".json";
  const std::string text = model::ReadRegularFile(path, static_cast<uint64_t>(kMaxCocoJsonBytes));
  model::CheckJsonDepth(text, path);
  json coco;
  try {
    coco = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": malformed JSON: " + e.what());
  }
  if (!coco.is_object() || !coco.contains("images") || !coco["images"].is_array()) {
    throw std::runtime_error(path + ": no \"images\" array");
  }
  std::vector<std::pair<int64_t, std::string>> files;
  for (const json& image : coco["images"]) {
    if (!image.is_object() || !image.contains("id") || !image["id"].is_number_integer() ||
        !image.contains("file_name") || !image["file_name"].is_string()) {
      throw std::runtime_error(path + ": an image without an integer id and a file_name");
    }
    files.emplace_back(image["id"].get<int64_t>(), image["file_name"].get<std::string>());
  }
  std::sort(files.begin(), files.end());
  std::vector<uint32_t> image_crcs;
  for (const auto& file : files) {
    const std::string bytes =
        model::ReadRegularFile(out_dir + "/" + file.second, model::kMaxImageFileBytes);
    const uLong crc = CrcAppend(crc32(0L, Z_NULL, 0), file.second + std::string(1, '\0'));
    image_crcs.push_back(static_cast<uint32_t>(CrcAppend(crc, bytes)));
  }
  return CombineChecksum(text, image_crcs);
}

}  // namespace psaq::data

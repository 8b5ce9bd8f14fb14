// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/), from psaq's own
// writers and real files, all a few KB:
//   safetensors/  tiny ViT and Swin float weights (with psaq metadata), a bare file of every dtype
//   export/       tiny ViT W8/A8 and Swin W4/A8 exports, each followed by its manifest
//                 (export_fuzz.cc's input layout)
//   idx/          the first images and labels of Debian's Fashion-MNIST test split, plain and gzip
//   image/        PNG grey, grey+alpha, RGB, RGBA (stb_image_write), palette and 16-bit (written
//                 here), baseline JPEG grey and RGB
//   flagfile/     cluster/flags/*.flags for quantize, one small flagfile per subcommand
//   coco/         a make-scenes instances file (2 images, compressed RLE) and a hand-written one
//                 with polygons, an uncompressed and a compressed RLE and a crowd annotation
//   make_fuzz_corpus <source dir> <out dir>
// Deterministic apart from the exports' "created" time. Rerun it when a format changes, then
// review the diff (the corpus is checked in).
#include <ATen/ATen.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/data/coco_mask.h"
#include "model/data/idx_reader.h"
#include "model/data/scenes.h"
#include "model/registry.h"
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/quantized_model.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::string;

void WriteFile(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
  std::printf("%s (%zu bytes)\n", path.string().c_str(), bytes.size());
}

Bytes ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes Gzip(const Bytes& plain, const fs::path& scratch) {
  gzFile gz = gzopen(scratch.c_str(), "wb9");
  if (gz == nullptr || gzwrite(gz, plain.data(), static_cast<unsigned>(plain.size())) !=
                           static_cast<int>(plain.size())) {
    throw std::runtime_error(scratch.string() + ": gzip failed");
  }
  gzclose(gz);
  Bytes bytes = ReadFile(scratch);
  fs::remove(scratch);
  return bytes;
}

psaq::model::ModelConfig TinyVit() {
  psaq::model::ModelConfig c;
  c.name = "fuzz_vit";
  c.arch = psaq::model::Arch::kViT;
  c.vit.img_size = 8;
  c.vit.patch_size = 4;
  c.vit.in_chans = 3;
  c.vit.num_classes = 3;
  c.vit.embed_dim = 8;
  c.vit.depth = 1;
  c.vit.num_heads = 2;
  c.vit.mlp_ratio = 1.0;
  return c;
}

psaq::model::ModelConfig TinySwin() {
  psaq::model::ModelConfig c;
  c.name = "fuzz_swin";
  c.arch = psaq::model::Arch::kSwin;
  c.swin.img_size = 8;
  c.swin.patch_size = 2;
  c.swin.in_chans = 1;
  c.swin.num_classes = 2;
  c.swin.embed_dim = 4;
  c.swin.depths = {2, 1};
  c.swin.num_heads = {1, 2};
  c.swin.window_size = 2;
  c.swin.mlp_ratio = 1.0;
  c.preprocess.mean = {0.5};
  c.preprocess.std = {0.25};
  return c;
}

void Weights(const psaq::model::ModelConfig& config, const fs::path& path) {
  const psaq::model::ModelPtr m = psaq::model::CreateModel(config);
  psaq::model::WriteSafetensors(path.string(), psaq::model::StateDict(*m),
                                psaq::model::ConfigToMetadata(config));
  std::printf("%s (%ju bytes)\n", path.c_str(), static_cast<uintmax_t>(fs::file_size(path)));
}

void Export(const psaq::model::ModelConfig& config, int w_bits, int a_bits, const fs::path& out,
            const fs::path& scratch) {
  psaq::quant::QuantConfig q;
  q.weight_bits = w_bits;
  q.act_bits = a_bits;
  psaq::quant::QuantizedModel model(psaq::model::CreateModel(config), q);
  psaq::quant::Calibrate(
      model, {at::randn({4, config.in_chans(), config.img_size(), config.img_size()})}, nullptr);
  psaq::quant::ExportOptions options;
  options.method = "noise";
  options.num_samples = 4;
  options.tool = "make_fuzz_corpus";
  const fs::path file = scratch / "export.safetensors";
  psaq::quant::ExportQuantizedModel(model, file.string(), options);
  WriteFile(out, ReadFile(file) + "\n#psaq-fuzz-manifest\n" +
                     ReadFile(psaq::quant::ManifestPath(file.string())));
}

// The first `n` items of an IDX tensor as an IDX file.
Bytes IdxPrefix(const at::Tensor& t, int64_t n) {
  const at::Tensor part = t.slice(0, 0, n).contiguous();
  Bytes bytes = {0, 0, 0x08, static_cast<char>(part.dim())};
  for (int64_t d : part.sizes()) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(d >> shift));
  }
  bytes.append(reinterpret_cast<const char*>(part.data_ptr<uint8_t>()), part.numel());
  return bytes;
}

void AppendToBytes(void* context, void* data, int size) {
  static_cast<Bytes*>(context)->append(static_cast<const char*>(data), size);
}

// A w x h image of `comp` channels with a small gradient.
std::vector<uint8_t> Pixels(int w, int h, int comp) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * comp);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 37 + 11);
  return p;
}

// One PNG chunk: length, type, data, CRC of type + data.
Bytes PngChunk(const Bytes& type, const Bytes& data) {
  Bytes chunk;
  const uint32_t len = static_cast<uint32_t>(data.size());
  for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<char>(len >> shift));
  const Bytes body = type + data;
  chunk += body;
  const uint32_t crc =
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  for (int shift = 24; shift >= 0; shift -= 8) chunk.push_back(static_cast<char>(crc >> shift));
  return chunk;
}

// A PNG stb_image_write cannot make: `color_type` 3 (palette, 8-bit, with a PLTE) or 0/2 at
// `depth` 16. Rows are filter 0 (none).
Bytes HandMadePng(int w, int h, int color_type, int depth) {
  const int channels = color_type == 2 ? 3 : 1;
  const int row_bytes = w * channels * depth / 8;
  Bytes raw;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);
    for (int x = 0; x < row_bytes; ++x) raw.push_back(static_cast<char>((x * 29 + y * 71) & 0x03));
  }
  uLongf size = compressBound(raw.size());
  Bytes z(size, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            raw.size(), 9);
  z.resize(size);
  Bytes ihdr;
  for (uint32_t v : {static_cast<uint32_t>(w), static_cast<uint32_t>(h)}) {
    for (int shift = 24; shift >= 0; shift -= 8) ihdr.push_back(static_cast<char>(v >> shift));
  }
  ihdr += {static_cast<char>(depth), static_cast<char>(color_type), 0, 0, 0};
  Bytes png = "\x89PNG\r\n\x1a\n";
  png += PngChunk("IHDR", ihdr);
  if (color_type == 3) png += PngChunk("PLTE", Bytes("\x00\x00\x00\xff\x00\x00\x00\xff\x00\x00\x00\xff", 12));
  png += PngChunk("IDAT", z);
  png += PngChunk("IEND", "");
  return png;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <source dir> <out dir>\n", argv[0]);
    return 2;
  }
  try {
    const fs::path source = argv[1];
    const fs::path out = argv[2];
    const fs::path scratch = out / ".scratch";
    fs::create_directories(scratch);
    at::manual_seed(20260418);

    fs::create_directories(out / "safetensors");
    Weights(TinyVit(), out / "safetensors/vit_tiny.safetensors");
    Weights(TinySwin(), out / "safetensors/swin_tiny.safetensors");
    psaq::model::WriteSafetensors(
        (out / "safetensors/dtypes.safetensors").string(),
        {{"f64", at::arange(2, at::kDouble)},
         {"f32", at::ones({2, 1})},
         {"f16", at::ones({1, 2}, at::kHalf)},
         {"bf16", at::ones({1}, at::kBFloat16)},
         {"i64", at::arange(2, at::kLong)},
         {"i32", at::ones({}, at::kInt)},
         {"i16", at::ones({2}, at::kShort)},
         {"i8", at::full({2}, -3, at::kChar)},
         {"u8", at::full({3}, 200, at::kByte)},
         {"bool", at::arange(2, at::kLong).eq(1)},
         {"empty", at::zeros({0, 4})}},
        {{"note", "every dtype"}});

    Export(TinyVit(), 8, 8, out / "export/vit_tiny_w8a8", scratch);
    Export(TinySwin(), 4, 8, out / "export/swin_tiny_w4a8", scratch);

    const std::string fmnist = "/usr/share/datasets/fashion-mnist/t10k-";
    const Bytes images = IdxPrefix(psaq::model::ReadIdxUint8(fmnist + "images-idx3-ubyte.gz", 3), 2);
    const Bytes labels = IdxPrefix(psaq::model::ReadIdxUint8(fmnist + "labels-idx1-ubyte.gz", 1), 8);
    WriteFile(out / "idx/fmnist_images_2", images);
    WriteFile(out / "idx/fmnist_images_2.gz", Gzip(images, scratch / "x.gz"));
    WriteFile(out / "idx/fmnist_labels_8", labels);
    WriteFile(out / "idx/fmnist_labels_8.gz", Gzip(labels, scratch / "x.gz"));

    const int sizes[][3] = {{3, 2, 1}, {2, 3, 2}, {4, 3, 3}, {3, 3, 4}};
    const char* names[] = {"grey.png", "grey_alpha.png", "rgb.png", "rgba.png"};
    for (int i = 0; i < 4; ++i) {
      const auto [w, h, comp] = sizes[i];
      Bytes png;
      const std::vector<uint8_t> p = Pixels(w, h, comp);
      stbi_write_png_to_func(&AppendToBytes, &png, w, h, comp, p.data(), w * comp);
      WriteFile(out / "image" / names[i], png);
    }
    WriteFile(out / "image/palette.png", HandMadePng(3, 2, 3, 8));
    WriteFile(out / "image/grey16.png", HandMadePng(2, 2, 0, 16));
    WriteFile(out / "image/rgb16.png", HandMadePng(2, 1, 2, 16));
    for (const int comp : {1, 3}) {
      Bytes jpg;
      const std::vector<uint8_t> p = Pixels(9, 8, comp);
      stbi_write_jpg_to_func(&AppendToBytes, &jpg, 9, 8, comp, p.data(), 90);
      WriteFile(out / "image" / (comp == 1 ? "grey.jpg" : "rgb.jpg"), jpg);
    }

    for (const auto& entry : fs::directory_iterator(source / "cluster/flags")) {
      WriteFile(out / "flagfile" / entry.path().stem(), "quantize\n" + ReadFile(entry.path()));
    }
    WriteFile(out / "flagfile/eval",
              "eval\n--model=m.safetensors\n--dataset=fashion_mnist\n--batch_size=8\n"
              "--max_images=16\n--on_bad_image=skip\n--device=cpu\n");
    WriteFile(out / "flagfile/generate",
              "generate\n--model=deit_tiny_patch16_224\n--method=v2\n--num_samples=4\n"
              "--output_dir=runs/x\n--v2_rounds=2\n--jitter_limits=2\n--seed=3\n");
    WriteFile(out / "flagfile/inspect", "inspect\n--file=model.safetensors\n--tensors\n");
    WriteFile(out / "flagfile/train",
              "train\n--arch=vit\n--config_json={\"img_size\": 28, \"patch_size\": 4, "
              "\"in_chans\": 1, \"embed_dim\": 32, \"depth\": 2, \"num_heads\": 2}\n"
              "--dataset=fashion_mnist\n--output=m.safetensors\n--epochs=1\n--lr=0.001\n"
              "--mean=0.286\n--std=0.353\n");
    WriteFile(out / "flagfile/bench", "bench\n--model=vit_small_patch16_224\n--steps=2\n"
                                      "--methods=v1,v2\n--entropy_impls=fused\n");

    fs::create_directories(out / "coco");
    psaq::data::ScenesOptions scenes;
    scenes.split = "val";
    scenes.num_images = 2;
    scenes.canvas_size = 64;
    scenes.min_item_size = 12;
    scenes.max_item_size = 40;
    scenes.min_items = 1;
    scenes.max_items = 3;
    const auto made = psaq::data::MakeScenes(scenes, (scratch / "scenes").string());
    WriteFile(out / "coco/scenes_val.json", ReadFile(made.json_path));
    at::Tensor blob = at::zeros({10, 12}, at::kBool), crowd = at::zeros({16, 20}, at::kBool);
    blob.slice(0, 2, 7).slice(1, 3, 9).fill_(true);
    crowd.slice(0, 0, 5).fill_(true);
    const nlohmann::json forms = {
        {"images",
         {{{"id", 1}, {"file_name", "a.png"}, {"width", 20}, {"height", 16}},
          {{"id", 2}, {"file_name", "b.png"}, {"width", 12}, {"height", 10}}}},
        {"categories", {{{"id", 7}, {"name", "seven"}}, {{"id", 3}, {"name", "three"}}}},
        {"annotations",
         {{{"id", 17}, {"image_id", 1}, {"category_id", 7}, {"bbox", {2.5, 3, 10, 6}},
           {"area", 50}, {"iscrowd", 0},
           {"segmentation", {{2.5, 3, 12.5, 3, 12.5, 9, 2.5, 9}, {1, 1, 4, 1, 2, 5}}}},
          {{"id", 18}, {"image_id", 2}, {"category_id", 3}, {"bbox", {3, 2, 6, 5}}, {"area", 30},
           {"segmentation",
            {{"counts", psaq::data::ToString(psaq::data::Encode(blob))}, {"size", {10, 12}}}}},
          {{"id", 19}, {"image_id", 1}, {"category_id", 3}, {"bbox", {0, 0, 20, 5}},
           {"area", 100}, {"iscrowd", 1},
           {"segmentation",
            {{"counts", psaq::data::Encode(crowd).counts}, {"size", {16, 20}}}}}}}};
    WriteFile(out / "coco/forms.json", forms.dump());
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_fuzz_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}

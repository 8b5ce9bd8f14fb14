#include "quant/evaluate_detector.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "dist/base/format.h"
#include "dist/collective_util.h"
#include "dist/fatal.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "quant/detection_eval.h"

namespace psaq::quant {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: KiB
}

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Skipped image ids as text ("7 12 ") for AllGatherStrings, and back.
std::string JoinIds(const std::vector<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) out += std::to_string(id) + " ";
  return out;
}

}  // namespace

double DetectorEvalResult::images_per_second() const {
  return forward_seconds > 0 ? static_cast<double>(images) / forward_seconds : 0.0;
}

data::CocoGroundTruth CocoGroundTruthOf(const data::CocoDataset& dataset, int64_t n,
                                        const std::vector<int64_t>& excluded) {
  if (n <= 0 || n > dataset.size()) n = dataset.size();
  const std::set<int64_t> left_out(excluded.begin(), excluded.end());
  data::CocoGroundTruth gt;
  for (const data::CocoCategory& c : dataset.categories()) gt.category_ids.push_back(c.id);
  for (int64_t i = 0; i < n; ++i) {
    const data::CocoImage& image = dataset.image(i);
    if (left_out.count(image.id)) continue;
    data::CocoGtImage g;
    g.id = image.id;
    g.height = image.height;
    g.width = image.width;
    for (int64_t pos : dataset.annotations_of(i)) {
      const data::CocoAnnotation& a = dataset.annotations()[pos];
      data::CocoGtObject o;
      o.id = a.id;
      o.category_id = a.category_id;
      o.bbox = a.bbox;
      o.area = a.area;
      o.iscrowd = a.iscrowd;
      o.mask = dataset.MaskRle(a);
      g.objects.push_back(std::move(o));
    }
    gt.images.push_back(std::move(g));
  }
  return gt;
}

at::Tensor PreprocessDetectionBatch(const std::vector<at::Tensor>& images,
                                    const detect::DetectorConfig& config) {
  TORCH_CHECK(!images.empty(), "PreprocessDetectionBatch: no images");
  TORCH_CHECK(config.in_chans == 3, "PreprocessDetectionBatch: the detector takes ",
              config.in_chans, " channels; images are RGB");
  int64_t height = 0, width = 0;
  for (const at::Tensor& image : images) {
    TORCH_CHECK(image.dim() == 3 && image.size(2) == 3 && image.scalar_type() == at::kByte,
                "PreprocessDetectionBatch: expected uint8 [H, W, 3], got ", image.sizes());
    height = std::max(height, image.size(0));
    width = std::max(width, image.size(1));
  }
  const int64_t divisor = config.size_divisor();
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor mean = at::tensor(config.mean, at::kDouble).to(at::kFloat).view({3, 1, 1});
  const at::Tensor std = at::tensor(config.std, at::kDouble).to(at::kFloat).view({3, 1, 1});
  // mmdet normalises first and pads the normalised tensor with 0 (pad_value).
  at::Tensor batch = at::zeros(
      {static_cast<int64_t>(images.size()), 3, RoundUp(height, divisor), RoundUp(width, divisor)},
      f32);
  for (size_t b = 0; b < images.size(); ++b) {
    const at::Tensor x = images[b].permute({2, 0, 1}).to(at::kFloat);
    batch[static_cast<int64_t>(b)]
        .narrow(1, 0, x.size(1))
        .narrow(2, 0, x.size(2))
        .copy_((x - mean) / std);
  }
  return batch;
}

std::vector<data::CocoDetection> ToCocoDetections(
    const detect::Detections& detections, int64_t image_id, int64_t height, int64_t width,
    const std::vector<data::CocoCategory>& categories) {
  const int64_t n = detections.boxes.size(0);
  TORCH_CHECK(detections.masks.dim() == 3 && detections.masks.size(0) == n &&
                  detections.masks.size(1) >= height && detections.masks.size(2) >= width,
              "ToCocoDetections: masks ", detections.masks.sizes(), " for ", n,
              " boxes on an image of ", height, " x ", width);
  const at::Tensor boxes = detections.boxes.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor scores = detections.scores.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor labels = detections.labels.to(at::kCPU, at::kLong).contiguous();
  const std::vector<data::Rle> masks =
      data::EncodeAll(detections.masks.narrow(1, 0, height).narrow(2, 0, width).to(at::kCPU));
  const float* box = boxes.data_ptr<float>();
  std::vector<data::CocoDetection> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = labels.data_ptr<int64_t>()[i];
    TORCH_CHECK(label >= 0 && label < static_cast<int64_t>(categories.size()),
                "ToCocoDetections: label ", label, " outside the ", categories.size(),
                " categories");
    // Clip in float32 as mmdet clips the float32 boxes; the padding only widens the limits.
    const float x1 = std::clamp(box[4 * i + 0], 0.0f, static_cast<float>(width));
    const float y1 = std::clamp(box[4 * i + 1], 0.0f, static_cast<float>(height));
    const float x2 = std::clamp(box[4 * i + 2], 0.0f, static_cast<float>(width));
    const float y2 = std::clamp(box[4 * i + 3], 0.0f, static_cast<float>(height));
    data::CocoDetection d;
    d.image_id = image_id;
    d.category_id = categories[static_cast<size_t>(label)].id;
    // mmdet's xyxy2xywh takes the float32 corners to Python floats (tolist), then subtracts.
    d.bbox = {x1, y1, static_cast<double>(x2) - x1, static_cast<double>(y2) - y1};
    d.score = scores.data_ptr<float>()[i];
    d.mask = masks[static_cast<size_t>(i)];
    out.push_back(std::move(d));
  }
  return out;
}

std::string CocoResultsJson(const std::vector<data::CocoDetection>& detections) {
  nlohmann::json all = nlohmann::json::array();
  for (const data::CocoDetection& d : detections) {
    nlohmann::json j;
    j["image_id"] = d.image_id;
    j["category_id"] = d.category_id;
    j["bbox"] = {d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]};
    j["score"] = d.score;
    if (d.mask) {
      j["segmentation"] = {{"size", {d.mask->height, d.mask->width}},
                           {"counts", data::ToString(*d.mask)}};
    }
    all.push_back(std::move(j));
  }
  return all.dump() + "\n";
}

void CheckDetectorFitsDataset(const detect::DetectorConfig& config,
                              const data::CocoDataset& dataset, int64_t n) {
  const std::string where = dataset.annotation_file() + ": ";
  if (config.num_classes != dataset.num_classes()) {
    throw std::runtime_error(where + "has " + std::to_string(dataset.num_classes()) +
                             " categories but the detector '" + config.name + "' has " +
                             std::to_string(config.num_classes) + " classes");
  }
  if (config.in_chans != 3) {
    throw std::runtime_error(where + "images are RGB but the detector '" + config.name +
                             "' takes " + std::to_string(config.in_chans) + " channels");
  }
  for (int64_t i = 0; i < n; ++i) {
    const data::CocoImage& image = dataset.image(i);
    if (std::max(image.height, image.width) > kMaxDetectorImageSide) {
      throw std::runtime_error(where + "image id " + std::to_string(image.id) + " (" +
                               image.file_name + "): " + std::to_string(image.width) + " x " +
                               std::to_string(image.height) + " px, above the " +
                               std::to_string(kMaxDetectorImageSide) +
                               " px the detector is run at without resizing");
    }
  }
}

DetectorEvalResult EvaluateDetector(dist::Communicator& comm, detect::MaskRcnn& detector,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options) {
  return EvaluateDetector(
      comm, detector, [&detector](const at::Tensor& x) { return detector.forward(x); }, dataset,
      options);
}

DetectorEvalResult EvaluateDetector(dist::Communicator& comm, QuantizedDetector& detector,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options) {
  return EvaluateDetector(
      comm, detector.detector(), [&detector](const at::Tensor& x) { return detector.Forward(x); },
      dataset, options);
}

DetectorEvalResult EvaluateDetector(dist::Communicator& comm, detect::MaskRcnn& detector,
                                    const DetectorForwardFn& forward,
                                    const data::CocoDataset& dataset,
                                    const DetectorEvalOptions& options) {
  TORCH_CHECK(options.batch_size >= 1, "EvaluateDetector: batch_size must be >= 1, got ",
              options.batch_size);
  TORCH_CHECK(options.max_images >= 0, "EvaluateDetector: max_images must be >= 0, got ",
              options.max_images);
  const auto start = Clock::now();
  const int64_t n =
      options.max_images > 0 ? std::min(options.max_images, dataset.size()) : dataset.size();
  CheckDetectorFitsDataset(detector.config(), dataset, n);
  at::NoGradGuard no_grad;
  detector.eval();

  const int64_t num_batches = (n + options.batch_size - 1) / options.batch_size;
  const dist::Range mine = dist::ShardRange(num_batches, comm.size(), comm.rank());
  std::vector<int64_t> my_ids, skipped_ids;
  std::vector<data::CocoDetection> my_detections;
  double forward_seconds = 0;
  auto last_log = Clock::now();
  for (int64_t b = mine.begin; b < mine.end; ++b) {
    const auto batch_start = Clock::now();
    std::vector<at::Tensor> images;
    std::vector<int64_t> indices;
    for (int64_t i = b * options.batch_size; i < std::min(n, (b + 1) * options.batch_size); ++i) {
      data::CocoSample sample;
      std::string error;
      if (!dataset.Decode(i, &sample, &error)) {
        if (options.on_bad_image == BadImagePolicy::kFail) {
          throw std::runtime_error(error +
                                   " (image cannot be decoded; --on_bad_image=skip skips it)");
        }
        LOG(WARNING) << dist::RankPrefix() << "skipping malformed image " << error;
        skipped_ids.push_back(dataset.image(i).id);
        continue;
      }
      images.push_back(sample.image);
      indices.push_back(i);
    }
    if (images.empty()) continue;
    // On the detector's device and in its dtype (a float64 detector in the training tests).
    const at::Tensor batch = PreprocessDetectionBatch(images, detector.config())
                                 .to(options.device, detector.parameters().front().scalar_type());
    const detect::DetectorOutputs out = forward(batch);
    for (size_t k = 0; k < indices.size(); ++k) {
      const data::CocoImage& image = dataset.image(indices[k]);
      auto dets = ToCocoDetections(out.detections[k], image.id, image.height, image.width,
                                   dataset.categories());
      my_detections.insert(my_detections.end(), std::make_move_iterator(dets.begin()),
                           std::make_move_iterator(dets.end()));
      my_ids.push_back(image.id);
    }
    forward_seconds += SecondsSince(batch_start);
    if (comm.rank() == 0 && options.progress_interval_seconds > 0 &&
        SecondsSince(last_log) >= options.progress_interval_seconds) {
      last_log = Clock::now();
      LOG(INFO) << "eval: batch " << (b - mine.begin + 1) << "/" << mine.size() << " on rank 0, "
                << base::FormatFixed(static_cast<double>(my_ids.size()) / forward_seconds, 2)
                << " images/s";
    }
  }

  // Every rank must evaluate against the same ground truth: all skipped images leave it.
  const c10::Device comm_device = dist::CollectiveDevice(comm, options.device);
  std::vector<int64_t> all_skipped;
  for (const std::string& text : dist::AllGatherStrings(comm, JoinIds(skipped_ids), comm_device)) {
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t space = text.find(' ', pos);
      all_skipped.push_back(std::stoll(text.substr(pos, space - pos)));
      pos = space + 1;
    }
  }
  const data::CocoGroundTruth gt = CocoGroundTruthOf(dataset, n, all_skipped);

  DetectorEvalResult result;
  result.box = EvaluateCocoSharded(comm, gt, my_ids, my_detections, data::CocoIouType::kBbox,
                                   options.device);
  result.segm = EvaluateCocoSharded(comm, gt, my_ids, my_detections, data::CocoIouType::kSegm,
                                    options.device);
  result.images = result.box.images;
  result.skipped = static_cast<int64_t>(all_skipped.size());
  result.detections = result.box.detections + result.box.left_out;
  const std::vector<double> times =
      dist::GatherDoubles(comm, {forward_seconds, PeakRssMb()}, comm_device);
  for (int r = 0; r < comm.size(); ++r) {
    result.forward_seconds = std::max(result.forward_seconds, times[2 * r]);
    result.peak_rss_mb = std::max(result.peak_rss_mb, times[2 * r + 1]);
  }
  if (options.gather_detections) {
    // Batches are contiguous in rank order, so concatenating by rank keeps dataset order.
    const std::vector<std::string> parts =
        dist::AllGatherStrings(comm, CocoResultsJson(my_detections), comm_device);
    if (comm.rank() == 0) {
      for (const std::string& part : parts) {
        for (const auto& j : nlohmann::json::parse(part)) {
          data::CocoDetection d;
          d.image_id = j.at("image_id").get<int64_t>();
          d.category_id = j.at("category_id").get<int64_t>();
          for (int c = 0; c < 4; ++c) d.bbox[c] = j.at("bbox").at(c).get<double>();
          d.score = j.at("score").get<double>();
          const auto& s = j.at("segmentation");
          d.mask = data::FromString(s.at("counts").get<std::string>(), s.at("size").at(0),
                                    s.at("size").at(1));
          result.detections_all.push_back(std::move(d));
        }
      }
    }
  }
  result.seconds = SecondsSince(start);
  return result;
}

}  // namespace psaq::quant

// psaq train --task=detect: trains a Swin Mask R-CNN on a COCO-format set, data-parallel over the
// ranks (launch/train/detect_train.h), with checkpoints next to --output, and writes the weights
// with the record of how they were made (config, command, seed, data checksums, per-epoch losses,
// validation AP). The flags shared with the classifier's training are defined in cmd_train.cc.
#include <filesystem>
#include <iomanip>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "dist/base/atomic_file.h"
#include "dist/logging.h"
#include "launch/flags.h"
#include "launch/process.h"
#include "launch/shared_flags.h"
#include "launch/subcommand.h"
#include "launch/train/detect_train.h"
#include "launch/train_record.h"
#include "model/data/coco_eval_json.h"
#include "model/detect/load_detector.h"

DECLARE_string(config_json);
DECLARE_string(output);
DECLARE_string(name);
DECLARE_int32(epochs);
DECLARE_int32(global_batch_size);
DECLARE_double(lr);
DECLARE_double(min_lr);
DECLARE_string(schedule);
DECLARE_double(warmup_epochs);
DECLARE_double(weight_decay);
DECLARE_double(flip_prob);
DECLARE_int32(eval_every);
DECLARE_int32(log_every);
DECLARE_int64(max_steps);
DECLARE_bool(resume);

DEFINE_string(val_dataset, "",
              "--task=detect: a COCO instances JSON to report box/mask AP on (images from its "
              "folder); optional.");
DEFINE_int64(val_images, 100,
             "--task=detect: validation images of the periodic (--eval_every) evaluations; the "
             "final one uses all. 0 = all.");
DEFINE_double(clip_grad_norm, 0,
              "--task=detect: clip the gradient's global L2 norm to this; 0 = no clipping.");
DEFINE_int64(checkpoint_steps, 200,
             "--task=detect: write the checkpoint (<output>.checkpoint/) every N steps, besides "
             "every epoch end.");
DEFINE_int64(rcnn_rois_per_image, 512,
             "--task=detect: RoIs sampled per image for the box and mask heads (mmdet's "
             "train_cfg.rcnn.sampler.num, 512; a quarter may be positives). Fewer = faster steps.");
DEFINE_validator(val_images, &psaq::launch::AtLeast64<0>);
DEFINE_validator(rcnn_rois_per_image, &psaq::launch::AtLeast64<1>);
DEFINE_validator(clip_grad_norm, &psaq::launch::NonNegativeDouble);
DEFINE_validator(checkpoint_steps, &psaq::launch::AtLeast64<1>);

namespace psaq::launch {
namespace {

using Json = nlohmann::json;

// The default detector of --task=detect: a small Swin Mask R-CNN for 10 classes (Fashion-MNIST
// scenes); --config_json's keys replace these.
constexpr const char* kDefaultDetectConfig =
    R"({"embed_dim": 32, "depths": [2, 2, 2, 2], "num_heads": [1, 2, 4, 8], "fpn_channels": 64,
        "rpn_feat_channels": 64, "num_classes": 10, "fc_out_channels": 256,
        "mask_conv_channels": 64})";

detect::DetectorConfig DetectConfigFromFlags() {
  Json config = Json::parse(kDefaultDetectConfig);
  if (!FLAGS_config_json.empty()) {
    const Json user = Json::parse(FLAGS_config_json, nullptr, /*allow_exceptions=*/false);
    if (!user.is_object()) {
      throw std::invalid_argument("--config_json is not a JSON object: " + FLAGS_config_json);
    }
    for (const auto& [key, value] : user.items()) config[key] = value;
  }
  detect::DetectorConfig c = detect::DetectorConfigFromMetadata(
      {{"arch", detect::kMaskRcnnSwinArch}, {"config", config.dump()}}, "--config_json");
  c.name = FLAGS_name.empty() ? std::filesystem::path(FLAGS_output).stem().stem().string()
                              : FLAGS_name;
  return c;
}

train::DetectTrainOptions DetectOptionsFromFlags() {
  train::DetectTrainOptions o;
  o.epochs = FLAGS_epochs;
  o.batch_size = FLAGS_global_batch_size;
  o.lr.peak_lr = FLAGS_lr;
  o.lr.final_lr = FLAGS_min_lr;
  o.warmup_epochs = FLAGS_warmup_epochs;
  o.adamw.weight_decay = FLAGS_weight_decay;
  o.flip_prob = FLAGS_flip_prob;
  o.clip_grad_norm = FLAGS_clip_grad_norm;
  o.seed = FLAGS_seed;
  o.log_every_steps = FLAGS_log_every;
  o.max_steps = FLAGS_max_steps;
  o.eval_every_epochs = FLAGS_eval_every;
  o.eval_images = FLAGS_val_images;
  o.eval_batch_size = FLAGS_batch_size;
  o.checkpoint_dir = FLAGS_output + ".checkpoint";
  o.checkpoint_every_steps = FLAGS_checkpoint_steps;
  o.resume = FLAGS_resume;
  o.train_config.rcnn_sampler.num = FLAGS_rcnn_rois_per_image;
  return o;
}

// The checksum a scenes set recorded in its manifest (scenes_<split>.manifest.json beside
// instances_<split>.json), or "unknown (no scenes manifest)".
// The make-scenes manifest beside a scenes annotations file (instances_<split>.json ->
// scenes_<split>.manifest.json), or null when there is none (data not made by make-scenes).
Json ScenesManifest(const std::string& json_path) {
  const std::filesystem::path p(json_path);
  const std::string stem = p.stem().string();
  const std::string prefix = "instances_";
  if (stem.rfind(prefix, 0) != 0) return nullptr;
  const std::filesystem::path manifest =
      p.parent_path() / ("scenes_" + stem.substr(prefix.size()) + ".manifest.json");
  if (!std::filesystem::exists(manifest)) return nullptr;
  Json m = Json::parse(base::ReadTextFile(manifest.string()), nullptr, false);
  return m.is_object() ? m : Json(nullptr);
}

std::string DataChecksum(const std::string& json_path) {
  const Json m = ScenesManifest(json_path);
  if (m.is_object() && m.contains("checksum") && m["checksum"].is_string()) {
    return m["checksum"].get<std::string>();
  }
  return "unknown (no scenes manifest)";
}

// The make-scenes options that regenerate the set (what the shipped detector's CI check,
// tests/launch/detector_zoo_check.cc, reads as "val_scenes"), or "" without a manifest.
std::string ScenesOptionsRecord(const std::string& json_path) {
  const Json m = ScenesManifest(json_path);
  if (!m.is_object()) return "";
  Json record = Json::object();
  for (const char* key : {"split", "num_images", "seed", "canvas_size"}) {
    if (!m.contains(key)) return "";
    record[key] = m[key];
  }
  return record.dump();
}

std::string Fixed(double v, int digits = 4) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

}  // namespace

void CheckDetectTrainFlags() {
  if (FLAGS_output.empty()) throw UsageError("--output is required");
  if (FLAGS_dataset.empty()) {
    throw UsageError("--dataset is required (--task=detect: a COCO instances JSON)");
  }
  if (FLAGS_schedule != "cosine") {
    throw UsageError("--schedule=" + FLAGS_schedule + ": --task=detect supports cosine only");
  }
  try {
    DetectConfigFromFlags();
    train::ValidateDetectTrainOptions(DetectOptionsFromFlags());
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

int RunDetectTrain(ProcessContext& process) {
  if (process.is_root()) base::CheckWritable("--output", FLAGS_output);
  const detect::DetectorConfig config = DetectConfigFromFlags();
  const data::CocoDataset train_set(FLAGS_dataset, "");
  if (train_set.num_classes() != config.num_classes) {
    throw std::runtime_error("--dataset " + FLAGS_dataset + " has " +
                             std::to_string(train_set.num_classes()) +
                             " categories but the detector's num_classes is " +
                             std::to_string(config.num_classes) + " (set it in --config_json)");
  }
  std::unique_ptr<data::CocoDataset> val_set;
  if (!FLAGS_val_dataset.empty()) {
    val_set = std::make_unique<data::CocoDataset>(FLAGS_val_dataset, "");
    if (val_set->num_classes() != config.num_classes) {
      throw std::runtime_error("--val_dataset " + FLAGS_val_dataset + " has " +
                               std::to_string(val_set->num_classes()) +
                               " categories but the detector's num_classes is " +
                               std::to_string(config.num_classes));
    }
  }
  const train::DetectTrainOptions options = DetectOptionsFromFlags();
  if (!options.resume && std::filesystem::exists(options.checkpoint_dir + "/state.json")) {
    throw std::runtime_error(options.checkpoint_dir +
                             " holds the checkpoint of an unfinished run: pass --resume to "
                             "continue it, or remove it");
  }
  at::manual_seed(FLAGS_seed);  // the initial weights (rank 0's are broadcast)
  detect::MaskRcnn model(config);
  model.to(process.device());
  dist::Communicator& comm = process.device_comm();
  const train::DetectTrainResult result =
      train::TrainDetector(model, train_set, val_set.get(), options, &comm);

  if (process.is_root()) {
    std::map<std::string, std::string> meta;
    meta["train_command"] = TrainCommandLine(process.size());
    meta["train_world_size"] = std::to_string(process.size());
    meta["train_seed"] = std::to_string(FLAGS_seed);
    meta["train_epochs"] = std::to_string(result.epochs.size());
    meta["train_steps"] = std::to_string(result.steps);
    meta["train_seconds"] = Fixed(result.seconds, 1);
    meta["train_data"] = train_set.Describe();
    meta["train_data_checksum"] = DataChecksum(FLAGS_dataset);
    Json history = Json::array();
    for (const train::DetectEpochStats& e : result.epochs) {
      Json j = {{"epoch", e.epoch}, {"loss", e.loss}, {"lr", e.lr}, {"seconds", e.seconds}};
      for (int i = 0; i < detect::DetectorLosses::kNumTerms; ++i) {
        j[std::string("loss_") + detect::DetectorLosses::Names()[i]] = e.terms[i];
      }
      if (e.evaluated) {
        j["val_images"] = e.eval_images;
        j["val_box_ap"] = e.box_ap;
        j["val_box_ap50"] = e.box_ap50;
        j["val_mask_ap"] = e.mask_ap;
      }
      history.push_back(j);
    }
    meta["train_history"] = history.dump();
    if (val_set) {
      meta["val_data"] = val_set->Describe();
      meta["val_data_checksum"] = DataChecksum(FLAGS_val_dataset);
      const std::string scenes = ScenesOptionsRecord(FLAGS_val_dataset);
      if (!scenes.empty()) meta["val_scenes"] = scenes;
    }
    std::ostringstream summary;
    summary << "trained " << config.name << ": " << result.epochs.size() << " epochs, "
            << result.steps << " steps in " << Fixed(result.seconds, 1) << " s\n";
    for (const train::DetectEpochStats& e : result.epochs) {
      summary << "  epoch " << e.epoch << "  loss " << Fixed(e.loss);
      if (e.evaluated) summary << "  val box AP " << Fixed(e.box_ap) << " mask AP " << Fixed(e.mask_ap);
      summary << "\n";
    }
    if (result.evaluated) {
      meta["val_images"] = std::to_string(result.final_eval.box.images);
      meta["val_box_ap"] = Fixed(result.final_eval.box.stats[0]);
      meta["val_box_ap50"] = Fixed(result.final_eval.box.stats[1]);
      meta["val_mask_ap"] = Fixed(result.final_eval.mask.stats[0]);
      meta["val_box_stats"] = Json(result.final_eval.box.stats).dump();
      meta["val_mask_stats"] = Json(result.final_eval.mask.stats).dump();
      summary << "val (" << result.final_eval.box.images << " images) box:\n"
              << data::FormatCocoStats(result.final_eval.box) << "mask:\n"
              << data::FormatCocoStats(result.final_eval.mask);
    }
    detect::SaveDetector(model, FLAGS_output, meta);
    LOG(INFO) << "wrote " << FLAGS_output;
    if (result.finished) {
      std::filesystem::remove_all(options.checkpoint_dir);
    } else {
      summary << "stopped by --max_steps after step " << result.steps
              << "; the same command with --resume continues from " << options.checkpoint_dir
              << "\n";
    }
    std::fputs(summary.str().c_str(), stdout);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace psaq::launch

#include "launch/train/detect_train.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "dist/base/atomic_file.h"
#include "dist/base/format.h"
#include "dist/collective_util.h"
#include "dist/logging.h"
#include "dist/partition.h"
#include "dist/single_rank_communicator.h"
#include "launch/train/train.h"
#include "launch/train/train_steps.h"
#include "model/data/coco_mask.h"
#include "model/detect/load_detector.h"
#include "model/state_dict.h"
#include "quant/evaluate_detector.h"

namespace psaq::train {
namespace {

using Json = nlohmann::json;
using detect::DetectorLosses;
constexpr int kTerms = DetectorLosses::kNumTerms;

// Random streams of a detector training job (dist::DeriveSeed's `stream`).
constexpr uint64_t kFlipStream = 0x6465746670666c70ULL;    // "detfpflp"
constexpr uint64_t kSampleStream = 0x646574736d706c65ULL;  // "detsmple"

using Clock = std::chrono::steady_clock;

[[noreturn]] void Invalid(const std::string& field, const std::string& value,
                          const std::string& rule) {
  throw std::invalid_argument("detector training options: " + field + " = " + value + " " + rule);
}

// One decoded, normalised (and possibly flipped) image with its targets.
struct Example {
  at::Tensor image;  // float [C, h, w]
  detect::DetectionGroundTruth gt;
};

Example LoadExample(const data::CocoDataset& set, int64_t index, bool flip,
                    const detect::DetectorConfig& config) {
  data::CocoSample sample;
  std::string error;
  if (!set.Decode(index, &sample, &error)) throw std::runtime_error(error);
  const at::Tensor keep = sample.iscrowd.logical_not().nonzero().squeeze(1);
  Example e;
  at::Tensor image = sample.image.permute({2, 0, 1}).to(at::kFloat);  // [3, h, w]
  const int64_t w = image.size(2);
  at::Tensor boxes = sample.boxes.index_select(0, keep);
  at::Tensor masks = set.Masks(index).index_select(0, keep);
  if (flip) {
    image = image.flip({2});
    masks = masks.flip({2});
    boxes = at::stack({w - boxes.select(1, 2), boxes.select(1, 1), w - boxes.select(1, 0),
                       boxes.select(1, 3)},
                      1);
  }
  const at::Tensor mean = at::tensor(config.mean, at::kDouble).to(at::kFloat).view({-1, 1, 1});
  const at::Tensor std = at::tensor(config.std, at::kDouble).to(at::kFloat).view({-1, 1, 1});
  e.image = (image - mean) / std;
  e.gt.boxes = boxes.contiguous();
  e.gt.labels = sample.labels.index_select(0, keep);
  e.gt.masks = masks.contiguous();
  return e;
}

// The images stacked at the top-left of a zero batch whose sides are multiples of `divisor`.
at::Tensor PadBatch(const std::vector<at::Tensor>& images, int64_t divisor) {
  int64_t h = 0, w = 0;
  for (const at::Tensor& im : images) h = std::max(h, im.size(1)), w = std::max(w, im.size(2));
  h = (h + divisor - 1) / divisor * divisor;
  w = (w + divisor - 1) / divisor * divisor;
  at::Tensor batch = at::zeros({static_cast<int64_t>(images.size()), images.front().size(0), h, w},
                               images.front().options());
  for (size_t i = 0; i < images.size(); ++i) {
    batch[static_cast<int64_t>(i)]
        .slice(1, 0, images[i].size(1))
        .slice(2, 0, images[i].size(2))
        .copy_(images[i]);
  }
  return batch;
}

double Uniform01(uint64_t seed) {
  return static_cast<double>(dist::SplitMix64(seed) >> 11) * (1.0 / 9007199254740992.0);
}

Json EpochJson(const DetectEpochStats& e) {
  Json j = {{"epoch", e.epoch}, {"steps", e.steps}, {"loss", e.loss},
            {"lr", e.lr},       {"seconds", e.seconds}};
  for (int i = 0; i < kTerms; ++i) j[std::string("loss_") + DetectorLosses::Names()[i]] = e.terms[i];
  if (e.evaluated) {
    j["val_images"] = e.eval_images;
    j["val_box_ap"] = e.box_ap;
    j["val_box_ap50"] = e.box_ap50;
    j["val_mask_ap"] = e.mask_ap;
  }
  return j;
}

DetectEpochStats EpochFromJson(const Json& j) {
  DetectEpochStats e;
  e.epoch = j.at("epoch").get<int>();
  e.steps = j.at("steps").get<int64_t>();
  e.loss = j.at("loss").get<double>();
  e.lr = j.at("lr").get<double>();
  e.seconds = j.at("seconds").get<double>();
  for (int i = 0; i < kTerms; ++i) {
    e.terms[i] = j.at(std::string("loss_") + DetectorLosses::Names()[i]).get<double>();
  }
  if (j.contains("val_box_ap")) {
    e.evaluated = true;
    e.eval_images = j.at("val_images").get<int64_t>();
    e.box_ap = j.at("val_box_ap").get<double>();
    e.box_ap50 = j.at("val_box_ap50").get<double>();
    e.mask_ap = j.at("val_mask_ap").get<double>();
  }
  return e;
}

}  // namespace

void ValidateDetectTrainOptions(const DetectTrainOptions& o) {
  if (o.epochs < 1) Invalid("epochs", std::to_string(o.epochs), "must be >= 1");
  if (o.batch_size < 1) Invalid("batch_size", std::to_string(o.batch_size), "must be >= 1");
  if (!(o.warmup_epochs >= 0 && o.warmup_epochs < o.epochs)) {
    Invalid("warmup_epochs", std::to_string(o.warmup_epochs),
            "must be in [0, epochs = " + std::to_string(o.epochs) + ")");
  }
  if (o.lr.shape != LrShape::kWarmupCosine) Invalid("lr.shape", LrShapeName(o.lr.shape), "must be cosine");
  if (!(o.flip_prob >= 0 && o.flip_prob <= 1)) {
    Invalid("flip_prob", std::to_string(o.flip_prob), "must be in [0, 1]");
  }
  if (!(o.clip_grad_norm >= 0)) {
    Invalid("clip_grad_norm", std::to_string(o.clip_grad_norm), "must be >= 0");
  }
  if (o.log_every_steps < 0) Invalid("log_every_steps", std::to_string(o.log_every_steps), "must be >= 0");
  if (o.max_steps < 0) Invalid("max_steps", std::to_string(o.max_steps), "must be >= 0");
  if (o.eval_every_epochs < 0) {
    Invalid("eval_every_epochs", std::to_string(o.eval_every_epochs), "must be >= 0");
  }
  if (o.eval_images < 0) Invalid("eval_images", std::to_string(o.eval_images), "must be >= 0");
  if (o.eval_batch_size < 1) {
    Invalid("eval_batch_size", std::to_string(o.eval_batch_size), "must be >= 1");
  }
  if (o.checkpoint_every_steps < 1) {
    Invalid("checkpoint_every_steps", std::to_string(o.checkpoint_every_steps), "must be >= 1");
  }
  if (o.resume && o.checkpoint_dir.empty()) Invalid("resume", "true", "needs a checkpoint_dir");
  if (o.train_config.rcnn_sampler.num < 1) {
    Invalid("train_config.rcnn_sampler.num", std::to_string(o.train_config.rcnn_sampler.num),
            "must be >= 1");
  }
}

DetectEvalResult EvaluateDetector(detect::MaskRcnn& model, const data::CocoDataset& val,
                                  int64_t max_images, int64_t batch_size,
                                  dist::Communicator* comm) {
  const bool was_training = model.is_training();
  quant::DetectorEvalOptions options;
  options.batch_size = batch_size;
  options.max_images = max_images;
  options.device = model.parameters().front().device();
  options.progress_interval_seconds = 0;  // the trainer logs the result
  dist::SingleRankCommunicator one_process;
  const quant::DetectorEvalResult r =
      quant::EvaluateDetector(comm != nullptr ? *comm : one_process, model, val, options);
  model.train(was_training);
  return {r.box, r.segm};
}

namespace {

class DetectTrainer {
 public:
  DetectTrainer(detect::MaskRcnn& model, const data::CocoDataset& train_set,
                const data::CocoDataset* val, const DetectTrainOptions& options,
                dist::Communicator* comm)
      : model_(model),
        set_(train_set),
        val_(val),
        options_(options),
        comm_(comm),
        world_(comm ? comm->size() : 1),
        rank_(comm ? comm->rank() : 0),
        n_(train_set.size()) {
    // The last incomplete global batch of an epoch is dropped.
    const StepPlan plan = PlanSteps(n_, options.batch_size, /*drop_last=*/true, options.epochs,
                                    options.lr, options.warmup_epochs, options.max_steps,
                                    "detector training options");
    steps_per_epoch_ = plan.steps_per_epoch;
    lr_ = plan.lr;
    planned_steps_ = plan.planned_steps;
    params_ = TrainableParameters(model);
    param_options_ = params_.front().options();
    sync_ = options.grad_sync;
    sync_.reduce = dist::ReduceOp::kSum;
  }

  DetectTrainResult Run() {
    const auto start = Clock::now();
    if (world_ > 1) dist::BroadcastParameters(*comm_, params_, 0, sync_);
    optimizer_ = MakeAdamW(model_, options_.adamw);
    if (options_.resume) LoadCheckpoint();
    if (rank_ == 0) {
      LOG(INFO) << "training detector " << model_.config().name << " on " << set_.Describe()
                << ": " << options_.epochs << " epochs x " << steps_per_epoch_ << " steps of "
                << options_.batch_size << " images over " << world_ << " rank(s), cosine lr peak "
                << lr_.peak_lr << ", warm-up " << lr_.warmup_steps << " steps"
                << (result_.steps > 0 ? ", resumed at step " + std::to_string(result_.steps) : "");
    }
    while (result_.steps < planned_steps_) RunEpoch(static_cast<int>(result_.steps / steps_per_epoch_));
    if (val_ != nullptr && result_.steps == lr_.total_steps) {
      result_.final_eval = EvaluateDetector(model_, *val_, 0, options_.eval_batch_size, comm_);
      result_.evaluated = true;
      if (rank_ == 0) {
        LOG(INFO) << std::fixed << std::setprecision(4) << "final val (all "
                  << result_.final_eval.box.images << " images): box AP "
                  << result_.final_eval.box.stats[0] << " AP50 " << result_.final_eval.box.stats[1]
                  << "  mask AP " << result_.final_eval.mask.stats[0];
      }
    }
    model_.eval();
    result_.finished = result_.steps == lr_.total_steps;
    result_.seconds = SecondsSince(start);
    return result_;
  }

 private:
  void RunEpoch(int epoch) {
    model_.train();
    const auto epoch_start = Clock::now();
    const std::vector<int64_t> order = EpochOrder(n_, options_.seed, epoch);
    for (int64_t s = result_.steps % steps_per_epoch_;
         s < steps_per_epoch_ && result_.steps < planned_steps_; ++s) {
      const double lr = TrainLrAtStep(lr_, result_.steps);
      const std::array<double, kTerms> terms = Step(order, epoch, s, lr);
      double total = 0;
      for (int i = 0; i < kTerms; ++i) sums_[i] += terms[i], total += terms[i];
      if (!std::isfinite(total)) {
        throw std::runtime_error("training diverged: the loss is " + std::to_string(total) +
                                 " at epoch " + std::to_string(epoch + 1) + " step " +
                                 std::to_string(s + 1) + " (lower the learning rate)");
      }
      ++epoch_steps_;
      ++result_.steps;
      last_lr_ = lr;
      const bool epoch_end = s + 1 == steps_per_epoch_;
      if (rank_ == 0 && !epoch_end && options_.log_every_steps > 0 &&
          epoch_steps_ % options_.log_every_steps == 0) {
        LogProgress(epoch, s, lr, SecondsSince(epoch_start));
      }
      if (epoch_end) break;
      if (result_.steps % options_.checkpoint_every_steps == 0 || result_.steps == planned_steps_) {
        SaveCheckpoint(epoch_seconds_ + SecondsSince(epoch_start));
      }
    }
    if (result_.steps % steps_per_epoch_ != 0) return;  // max_steps stopped it mid-epoch
    DetectEpochStats stats;
    stats.epoch = epoch + 1;
    stats.steps = epoch_steps_;
    for (int i = 0; i < kTerms; ++i) {
      stats.terms[i] = sums_[i] / static_cast<double>(std::max<int64_t>(epoch_steps_, 1));
      stats.loss += stats.terms[i];
    }
    stats.lr = last_lr_;
    stats.seconds = epoch_seconds_ + SecondsSince(epoch_start);
    const bool last = epoch + 1 == options_.epochs;
    if (val_ != nullptr && !last && options_.eval_every_epochs > 0 &&
        (epoch + 1) % options_.eval_every_epochs == 0) {
      const DetectEvalResult r =
          EvaluateDetector(model_, *val_, options_.eval_images, options_.eval_batch_size, comm_);
      stats.evaluated = true;
      stats.eval_images = r.box.images;
      stats.box_ap = r.box.stats[0];
      stats.box_ap50 = r.box.stats[1];
      stats.mask_ap = r.mask.stats[0];
      model_.train();
    }
    result_.epochs.push_back(stats);
    sums_.fill(0);
    epoch_steps_ = 0;
    epoch_seconds_ = 0;
    if (rank_ == 0) LogEpoch(stats);
    SaveCheckpoint(0);
  }

  // One optimiser step on global batch `s` of the epoch; returns the global batch's loss terms.
  std::array<double, kTerms> Step(const std::vector<int64_t>& order, int epoch, int64_t s,
                                  double lr) {
    const int64_t first = s * options_.batch_size;
    const dist::Range mine = dist::ShardRange(options_.batch_size, world_, rank_);
    std::vector<at::Tensor> images;
    std::vector<detect::DetectionGroundTruth> gt;
    std::vector<std::pair<int64_t, int64_t>> sizes;
    std::vector<at::Generator> generators;
    for (int64_t k = first + mine.begin; k < first + mine.end; ++k) {
      const uint64_t position = static_cast<uint64_t>(epoch) * static_cast<uint64_t>(n_) +
                                static_cast<uint64_t>(k);
      const bool flip =
          Uniform01(dist::DeriveSeed(options_.seed, kFlipStream, position)) < options_.flip_prob;
      Example e = LoadExample(set_, order[static_cast<size_t>(k)], flip, model_.config());
      sizes.emplace_back(e.image.size(1), e.image.size(2));
      images.push_back(e.image);
      gt.push_back(std::move(e.gt));
      generators.push_back(at::make_generator<at::CPUGeneratorImpl>(
          dist::DeriveSeed(options_.seed, kSampleStream, position)));
    }
    SetLearningRate(*optimizer_, lr);
    optimizer_->zero_grad();
    // Counts and sums of every rank: [counts..., sums...].
    std::vector<double> totals(2 * kTerms, 0.0);
    std::optional<DetectorLosses> losses;
    if (!images.empty()) {
      losses = detect::MaskRcnnLosses(
          model_, PadBatch(images, model_.config().size_divisor()).to(param_options_), gt, sizes,
          generators, options_.train_config);
      for (int i = 0; i < kTerms; ++i) {
        totals[i] = losses->terms[i].count;
        totals[kTerms + i] = losses->terms[i].sum.item<double>();
      }
    }
    SumOverRanks(totals, comm_, param_options_.device());
    std::array<double, kTerms> counts{}, terms{};
    for (int i = 0; i < kTerms; ++i) {
      counts[i] = totals[i];
      terms[i] = totals[kTerms + i] / std::max(counts[i], 1.0);
    }
    if (losses) losses->Total(counts).backward();
    if (world_ > 1) dist::AllReduceGradients(*comm_, params_, sync_);
    if (options_.clip_grad_norm > 0) {
      torch::nn::utils::clip_grad_norm_(params_, options_.clip_grad_norm);
    }
    optimizer_->step();
    return terms;
  }

  std::string Path(const std::string& file) const {
    return (std::filesystem::path(options_.checkpoint_dir) / file).string();
  }

  // epoch_seconds: the current epoch's training time so far.
  void SaveCheckpoint(double epoch_seconds) {
    if (options_.checkpoint_dir.empty() || rank_ != 0) return;
    base::MakeDirs(options_.checkpoint_dir);
    // Model and optimiser first, then the state that names them complete.
    detect::SaveDetector(model_, Path("model.safetensors.tmp"));
    std::filesystem::rename(Path("model.safetensors.tmp"), Path("model.safetensors"));
    torch::save(*optimizer_, Path("optimizer.pt.tmp"));
    std::filesystem::rename(Path("optimizer.pt.tmp"), Path("optimizer.pt"));
    Json state = {{"steps", result_.steps}, {"epoch_steps", epoch_steps_},
                  {"epoch_seconds", epoch_seconds},
                  {"epoch_sums", sums_}, {"history", Json::array()}};
    for (const DetectEpochStats& e : result_.epochs) state["history"].push_back(EpochJson(e));
    base::WriteFileAtomic(Path("state.json"), state.dump(1));
  }

  void LoadCheckpoint() {
    if (!std::filesystem::exists(Path("state.json"))) {
      if (rank_ == 0) LOG(INFO) << "no checkpoint in " << options_.checkpoint_dir << ": starting afresh";
      return;
    }
    try {
      const Json state = Json::parse(base::ReadTextFile(Path("state.json")));
      const detect::DetectorPtr saved = detect::LoadDetector(Path("model.safetensors"));
      c10::NoGradGuard no_grad;
      const auto from = saved->named_parameters();
      for (auto& p : model_.named_parameters()) {
        const at::Tensor* src = from.find(p.key());
        if (src == nullptr || !src->sizes().equals(p.value().sizes())) {
          throw std::runtime_error("the checkpoint's model differs from --config_json at " + p.key());
        }
        p.value().copy_(*src);
      }
      torch::load(*optimizer_, Path("optimizer.pt"));
      result_.steps = state.at("steps").get<int64_t>();
      epoch_steps_ = state.at("epoch_steps").get<int64_t>();
      epoch_seconds_ = state.at("epoch_seconds").get<double>();
      sums_ = state.at("epoch_sums").get<std::array<double, kTerms>>();
      for (const Json& e : state.at("history")) result_.epochs.push_back(EpochFromJson(e));
      if (result_.steps > lr_.total_steps) {
        throw std::runtime_error("it has " + std::to_string(result_.steps) +
                                 " steps, more than this run's " +
                                 std::to_string(lr_.total_steps));
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("checkpoint " + options_.checkpoint_dir + ": " + e.what());
    }
  }

  double Eta(double seconds_so_far, int64_t steps_this_run) const {
    if (steps_this_run <= 0) return 0;
    return seconds_so_far / static_cast<double>(steps_this_run) *
           static_cast<double>(planned_steps_ - result_.steps);
  }

  void LogProgress(int epoch, int64_t s, double lr, double in_epoch) const {
    std::ostringstream line;
    line << "epoch " << epoch + 1 << "/" << options_.epochs << " step " << s + 1 << "/"
         << steps_per_epoch_ << std::fixed << std::setprecision(4) << "  loss ";
    double total = 0;
    for (int i = 0; i < kTerms; ++i) total += sums_[i];
    line << total / static_cast<double>(epoch_steps_) << " (";
    for (int i = 0; i < kTerms; ++i) {
      line << (i ? " " : "") << DetectorLosses::Names()[i] << " "
           << sums_[i] / static_cast<double>(epoch_steps_);
    }
    line << ")  lr " << std::scientific << std::setprecision(3) << lr << std::fixed
         << std::setprecision(2) << "  "
         << (in_epoch + epoch_seconds_) / static_cast<double>(epoch_steps_) << " s/step  ETA "
         << base::FormatSeconds(Eta(in_epoch + epoch_seconds_, epoch_steps_));
    LOG(INFO) << line.str();
  }

  void LogEpoch(const DetectEpochStats& e) const {
    std::ostringstream line;
    line << std::fixed << "epoch " << e.epoch << "/" << options_.epochs << " done in "
         << base::FormatSeconds(e.seconds) << std::setprecision(4) << "  loss " << e.loss << " (";
    for (int i = 0; i < kTerms; ++i) {
      line << (i ? " " : "") << DetectorLosses::Names()[i] << " " << e.terms[i];
    }
    line << ")";
    if (e.evaluated) {
      line << "  val (" << e.eval_images << " images) box AP " << e.box_ap << " AP50 "
           << e.box_ap50 << " mask AP " << e.mask_ap;
    }
    line << "  ETA " << base::FormatSeconds(Eta(e.seconds, e.steps));
    LOG(INFO) << line.str();
  }

  detect::MaskRcnn& model_;
  const data::CocoDataset& set_;
  const data::CocoDataset* val_;
  const DetectTrainOptions& options_;
  dist::Communicator* comm_;
  const int world_, rank_;
  const int64_t n_;
  int64_t steps_per_epoch_ = 0;
  int64_t planned_steps_ = 0;
  TrainLrOptions lr_;
  std::vector<at::Tensor> params_;
  at::TensorOptions param_options_;
  dist::GradSyncOptions sync_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::array<double, kTerms> sums_{};  // the current epoch's per-step terms, summed
  int64_t epoch_steps_ = 0;            // steps of the current epoch so far
  double epoch_seconds_ = 0;           // of the current epoch in earlier runs (resume)
  double last_lr_ = 0;
  DetectTrainResult result_;
};

}  // namespace

DetectTrainResult TrainDetector(detect::MaskRcnn& model, const data::CocoDataset& train_set,
                                const data::CocoDataset* val, const DetectTrainOptions& options,
                                dist::Communicator* comm) {
  ValidateDetectTrainOptions(options);
  return DetectTrainer(model, train_set, val, options, comm).Run();
}

}  // namespace psaq::train

// Top-1 / top-5 accuracy of a model on a labelled dataset, split over the ranks of a job.
//
//   EvalOptions options;
//   options.batch_size = 128;
//   const EvalResult r = Evaluate(comm, [&](const at::Tensor& x) { return model->forward(x); },
//                                 dataset, model->config(), options);
//   // r.top1(), r.top5(), r.images: the same on every rank and for any number of ranks.
//
// Work split. The first n images of the dataset (n = max_images, or all) are cut into a fixed
// grid of batches: batch b holds images [b * batch_size, min(n, (b + 1) * batch_size)). The
// batches (not the images) are split over the ranks with dist::ShardRange, so every image is
// forwarded with the same companions at the same position in its batch whatever the number of
// ranks: its logits, hence its prediction, do not depend on how many ranks ran (a batch's
// composition can change float results in the last bits; this grid keeps it fixed). Shards differ
// by at most one batch; a rank with no batch still takes part in the final all-reduce. Within a
// rank, batches run in order, one at a time, in eval mode and without autograd.
//
// Malformed images (ImageDataset::Decode fails): with BadImagePolicy::kSkip each is logged as a
// warning naming its source and the rank, left out of its batch, and counted in `skipped` (summed
// over ranks); with kFail the first one throws std::runtime_error naming the source, on the rank
// that met it (in psaq's mains that aborts the job).
//
// LayerErrors adds where a quantized model loses accuracy: the per-layer SQNR of its activations
// against its own float model on the first images of the same dataset, worst layers first.
//
// Progress: rank 0 LOG(INFO)s its own progress with throughput and an ETA at most every
// progress_interval_seconds (the shards are balanced, so rank 0's progress is the job's).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/config.h"
#include "model/data/dataset.h"
#include "quant/metrics.h"
#include "quant/quantized_model.h"

namespace psaq::quant {

// What to do with an image that does not decode.
enum class BadImagePolicy {
  kFail,  // throw, naming the file (the default: a corrupt evaluation set should be noticed)
  kSkip,  // warn, leave it out, count it
};

// "fail" / "skip".
std::string BadImagePolicyName(BadImagePolicy policy);
// Parses "fail" / "skip"; throws std::invalid_argument naming the value otherwise.
BadImagePolicy ParseBadImagePolicy(const std::string& name);

struct EvalOptions {
  // Images per forward pass, and the unit of the work split (see above). Default 64. Larger
  // batches are faster on a GPU; the results do not depend on it except in the last float bits.
  int64_t batch_size = 64;
  // Evaluate only the first max_images images of the dataset (in dataset order). Default 0 = all.
  int64_t max_images = 0;
  // Malformed images: fail (default) or skip (see above).
  BadImagePolicy on_bad_image = BadImagePolicy::kFail;
  // Where the forward runs: each batch is moved there before `forward`. Default the CPU.
  c10::Device device = c10::Device(c10::kCPU);
  // Rank 0 logs progress at most this often, in seconds. Default 10; 0 = never.
  double progress_interval_seconds = 10;
  // Fill EvalResult::predictions (one extra all-reduce of n int64). Default false.
  bool gather_predictions = false;
};

struct EvalResult {
  int64_t images = 0;        // images evaluated (decoded), all ranks
  int64_t top1_correct = 0;  // images whose label is the top-scoring class
  int64_t top5_correct = 0;  // images whose label is among the `topk` top-scoring classes
  int64_t skipped = 0;       // malformed images left out (kSkip), all ranks
  int topk = 5;              // k of "top-5": min(5, number of model classes)
  double seconds = 0;        // wall time of the evaluation on this rank, final all-reduce included
  // With gather_predictions: [n] the top-1 class of dataset image i (i < n), -1 when skipped;
  // identical on every rank. Empty otherwise.
  std::vector<int64_t> predictions;

  // Fractions in [0, 1]; 0 when no image was evaluated.
  double top1() const;
  double top5() const;
};

// Maps a batch of preprocessed images [B, in_chans, S, S] (on EvalOptions::device) to logits
// [B, num_classes]: a float model's forward, or a quantized model's.
using ForwardFn = std::function<at::Tensor(const at::Tensor&)>;

// Collective over `comm` (one all-reduce of four int64 counts at the end, one more with
// gather_predictions); every rank passes the same dataset, config and options. Tensors handed to
// the communicator live on the CPU, or on options.device when comm.backend() is "nccl".
// `config` gives the preprocessing and the number of classes (model::MakeBatch).
// Throws c10::Error (TORCH_CHECK) when batch_size < 1, max_images < 0, the dataset has more
// classes than the model, or the forward returns a wrong shape; std::runtime_error naming the
// image with kFail (see above). Errors are raised on the rank that meets them: in a multi-rank
// job the caller must abort the job (dist::AbortJob), as psaq's mains do.
EvalResult Evaluate(dist::Communicator& comm, const ForwardFn& forward,
                    const model::ImageDataset& dataset, const model::ModelConfig& config,
                    const EvalOptions& options = {});

// The top-1 and top-k hits of one batch: logits [B, K], labels int64 [B] (any device) ->
// {top1 hits, topk hits} over the batch, k = min(topk, K). Exposed for tests.
// REQUIRES: labels in [0, K) (TORCH_CHECK).
std::pair<int64_t, int64_t> CountHits(const at::Tensor& logits, const at::Tensor& labels, int topk);

// The per-layer error of a calibrated quantized model on the first num_batches * batch_size images
// of `dataset` (within max_images), taken as ONE batch: quant::PerLayerError (float vs quantized
// activation at every activation tap, then the output), sorted by SQNR, worst (lowest) first;
// equal SQNRs keep forward order. Runs on options.device; malformed images follow
// options.on_bad_image (skipped silently here: Evaluate reports them). Not collective: call it
// on one rank. Memory: every activation of that batch, twice.
// REQUIRES: num_batches >= 1, the model calibrated (TORCH_CHECK). Throws c10::Error when no image
// of the selection decodes, std::runtime_error naming the image with kFail.
std::vector<TapError> LayerErrors(QuantizedModel& model, const model::ImageDataset& dataset,
                                  const EvalOptions& options, int64_t num_batches);

// LayerErrors as a table: rank, layer, SQNR (dB), cosine; the `max_rows` worst rows (all when
// max_rows <= 0), then a line saying how many were left out. The "output" row is always shown.
std::string FormatLayerErrors(const std::vector<TapError>& errors, int max_rows);

}  // namespace psaq::quant

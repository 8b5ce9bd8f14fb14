#include "model/detect/swin_backbone.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <string>

#include "model/swin_block.h"

namespace psaq::detect {

using model::TapKind;
using model::TapScope;

SwinDetBlockImpl::SwinDetBlockImpl(int dim, int num_heads, int window_size, bool shift,
                                   int mlp_ratio, bool qkv_bias, double norm_eps,
                                   const TapScope& scope)
    : window_size_(window_size),
      // mmdet's SwinBlock: shift = window // 2 on odd blocks, never clipped.
      shift_size_(shift ? window_size / 2 : 0),
      taps_(scope.taps()) {
  TORCH_CHECK(window_size > 0 && dim > 0 && mlp_ratio > 0, "SwinDetBlock: bad sizes");
  const auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(norm_eps));
  };
  norm1_ = register_module("norm1", ln());
  norm1_out_tap_ = scope.Register("norm1.out", TapKind::kActivation);
  auto attn = register_module("attn", std::make_shared<torch::nn::Module>("ShiftWindowMSA"));
  attn_ = attn->register_module(
      "w_msa", model::WindowAttention(
                   model::WindowAttentionOptions(dim, num_heads, window_size).qkv_bias(qkv_bias),
                   scope.Child("attn.w_msa"), scope.Name("av_mean")));
  add1_tap_ = scope.Register("add1", TapKind::kActivation);
  norm2_ = register_module("norm2", ln());
  norm2_out_tap_ = scope.Register("norm2.out", TapKind::kActivation);
  // mmcv's FFN: layers = Sequential(Sequential(Linear, GELU, Dropout), Linear, Dropout).
  auto ffn = register_module("ffn", std::make_shared<torch::nn::Module>("FFN"));
  auto layers = ffn->register_module("layers", std::make_shared<torch::nn::Module>("Sequential"));
  auto layer0 = layers->register_module("0", std::make_shared<torch::nn::Module>("Sequential"));
  fc1_ = layer0->register_module("0", torch::nn::Linear(dim, mlp_ratio * dim));
  fc2_ = layers->register_module("1", torch::nn::Linear(mlp_ratio * dim, dim));
  model::InitLinearTimm(fc1_);
  model::InitLinearTimm(fc2_);
  fc1_weight_tap_ = scope.Register("ffn.layers.0.0.weight", TapKind::kWeight);
  act_tap_ = scope.Register("ffn.act", TapKind::kActivation);
  fc2_weight_tap_ = scope.Register("ffn.layers.1.weight", TapKind::kWeight);
  ffn_out_tap_ = scope.Register("ffn.out", TapKind::kActivation);
  add2_tap_ = scope.Register("add2", TapKind::kActivation);
  out_tap_ = scope.Register("out", TapKind::kFeature);
}

const at::Tensor& SwinDetBlockImpl::Mask(int64_t padded_h, int64_t padded_w,
                                         const at::Tensor& like) {
  auto it = masks_.find({padded_h, padded_w});
  if (it == masks_.end()) {
    it = masks_
             .emplace(std::make_pair(padded_h, padded_w),
                      model::ConstantCache(
                          model::ShiftedWindowMask(padded_h, padded_w, window_size_, shift_size_)))
             .first;
  }
  return it->second.Get(like.device(), like.scalar_type());
}

at::Tensor SwinDetBlockImpl::forward(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SwinDetBlock: expected [B, H, W, C], got ", x.sizes());
  const int64_t H = x.size(1), W = x.size(2);
  const int64_t ws = window_size_;
  const int s = shift_size_;
  at::Tensor h = taps_->Apply(norm1_out_tap_, norm1_->forward(x));
  // As ShiftWindowMSA: zero-pad the normalised map on the bottom/right to window multiples.
  const int64_t pad_b = (ws - H % ws) % ws;
  const int64_t pad_r = (ws - W % ws) % ws;
  if (pad_b > 0 || pad_r > 0) h = at::constant_pad_nd(h, {0, 0, 0, pad_r, 0, pad_b});
  const int64_t Hp = H + pad_b, Wp = W + pad_r;
  at::Tensor mask;
  if (s > 0) {
    h = at::roll(h, {-s, -s}, {1, 2});
    mask = Mask(Hp, Wp, x);
  }
  at::Tensor windows = model::WindowPartition(h, window_size_);  // [B·nW, N, C]
  windows = attn_->forward(windows, mask);
  h = model::WindowReverse(windows, window_size_, Hp, Wp);
  if (s > 0) h = at::roll(h, {s, s}, {1, 2});
  if (pad_b > 0 || pad_r > 0) {
    using at::indexing::Slice;
    h = h.index({Slice(), Slice(0, H), Slice(0, W)}).contiguous();
  }
  at::Tensor y = taps_->Apply(add1_tap_, x + h);
  h = taps_->Apply(norm2_out_tap_, norm2_->forward(y));
  h = model::TappedLinear(*taps_, fc1_weight_tap_, fc1_, h);
  h = taps_->Apply(act_tap_, at::gelu(h));
  h = model::TappedLinear(*taps_, fc2_weight_tap_, fc2_, h);
  h = taps_->Apply(ffn_out_tap_, h);
  y = taps_->Apply(add2_tap_, y + h);
  if (taps_->Wants(TapKind::kFeature)) taps_->Apply(out_tap_, y);
  return y;
}

SwinBackboneImpl::SwinBackboneImpl(const DetectorConfig& config, const TapScope& scope)
    : config_(config), taps_(scope.taps()) {
  TORCH_CHECK(!config.depths.empty() && config.depths.size() == config.num_heads.size(),
              "SwinBackbone: depths and num_heads must be non-empty and of equal length");
  const int P = config.patch_size;
  auto patch_embed =
      register_module("patch_embed", std::make_shared<torch::nn::Module>("PatchEmbed"));
  projection_ = patch_embed->register_module(
      "projection",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_chans, config.embed_dim, P).stride(P)));
  patch_norm_ = patch_embed->register_module(
      "norm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.embed_dim}).eps(config.norm_eps)));
  projection_weight_tap_ = scope.Register("patch_embed.projection.weight", TapKind::kWeight);
  projection_out_tap_ = scope.Register("patch_embed.projection.out", TapKind::kActivation);
  patch_norm_out_tap_ = scope.Register("patch_embed.norm.out", TapKind::kActivation);

  auto stages = register_module("stages", torch::nn::ModuleList());
  const int S = config.num_stages();
  for (int i = 0; i < S; ++i) {
    const int dim = config.stage_channels(i);
    const std::string path = "stages." + std::to_string(i);
    auto stage = std::make_shared<torch::nn::Module>("SwinBlockSequence");
    auto blocks = stage->register_module("blocks", torch::nn::ModuleList());
    blocks_.emplace_back();
    for (int j = 0; j < config.depths[i]; ++j) {
      const std::string block_path = path + ".blocks." + std::to_string(j);
      SwinDetBlock block(dim, config.num_heads[i], config.window_size, j % 2 == 1, config.mlp_ratio,
                         config.qkv_bias, config.norm_eps, scope.Child(block_path));
      blocks->push_back(block);
      blocks_.back().push_back(block);
      block_paths_.push_back(scope.Child(block_path).prefix());
    }
    if (i + 1 < S) {
      downsample_.push_back(stage->register_module(
          "downsample", model::PatchMerging(model::PatchMergingOptions(dim)
                                                .norm_eps(config.norm_eps)
                                                .channel_order(model::MergeOrder::kUnfold),
                                            scope.Child(path + ".downsample"))));
    }
    stages->push_back(stage);
    out_norm_taps_.push_back(
        scope.Register("norm" + std::to_string(i) + ".out", TapKind::kActivation));
  }
  // mmdet adds norm0..norm<S-1> after the stages (state-dict order).
  for (int i = 0; i < S; ++i) {
    out_norms_.push_back(register_module(
        "norm" + std::to_string(i),
        torch::nn::LayerNorm(
            torch::nn::LayerNormOptions({config.stage_channels(i)}).eps(config.norm_eps))));
  }
}

BackboneOutputs SwinBackboneImpl::forward(const at::Tensor& input) {
  const int64_t d = config_.size_divisor();
  TORCH_CHECK(input.dim() == 4 && input.size(1) == config_.in_chans && input.size(2) > 0 &&
                  input.size(3) > 0 && input.size(2) % d == 0 && input.size(3) % d == 0,
              "SwinBackbone: expected input [B, ", config_.in_chans,
              ", H, W] with H and W positive multiples of ", d, ", got ", input.sizes());
  const int64_t P = config_.patch_size;
  at::Tensor w = taps_->Apply(projection_weight_tap_, projection_->weight);
  at::Tensor x = at::conv2d(input, w, projection_->bias, {P, P}).permute({0, 2, 3, 1});
  x = taps_->Apply(projection_out_tap_, x);
  x = taps_->Apply(patch_norm_out_tap_, patch_norm_->forward(x));  // [B, H', W', C]
  BackboneOutputs out;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (SwinDetBlock& block : blocks_[i]) x = block->forward(x);
    at::Tensor stage_out = x;
    if (i < downsample_.size()) x = downsample_[i]->forward(x);
    at::Tensor y = taps_->Apply(out_norm_taps_[i], out_norms_[i]->forward(stage_out));
    out.features.push_back(y.permute({0, 3, 1, 2}).contiguous());
  }
  return out;
}

}  // namespace psaq::detect

// Floating-point operations of a model's forward pass, counted analytically from its config
// (matmuls and attention products: 2 FLOPs per multiply-add; LayerNorm, softmax, GELU and the
// entropy term are not counted). For the benchmark's TFLOP/s and FLOP floor.
//
// ViT/DeiT, N = (S/p)^2 + 1 tokens of width d, MLP hidden h, per block:
//   qkv 2·N·d·3d + attention 2·2·N²·d + proj 2·N·d² + MLP 2·2·N·d·h;
//   plus the patch embedding 2·(N-1)·C·p²·d and the head 2·d·K.
// Swin, stage i with T_i tokens of width d_i in windows of w² tokens: the same per block with
// attention 2·2·T_i·w²·d_i; patch merging 2·T_i·4d_{i-1}·2d_{i-1} at the start of stages i > 0.
//
// A V1 step is one forward and one backward pass to the input (the weights need no gradient),
// counted as 2 forwards. A V2 sample step runs teacher and student that way (4 forwards); a student
// step runs the teacher forward and the student forward and full backward (1 + 3 forwards).
#pragma once

#include <cstdint>

#include "model/config.h"

namespace psaq::launch {

// Forward FLOPs of one image.
double ForwardFlopsPerImage(const model::ModelConfig& config);

}  // namespace psaq::launch

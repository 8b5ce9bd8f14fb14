// Reordering the tokens of [B, L, C] maps by a fixed permutation in one copy, for Swin's shifted
// windows: the cyclic shift (roll by -shift on H and W) followed by the window partition is one
// permutation of the H·W positions, and the window reverse followed by the roll back is its
// inverse. Done as two index_selects instead of two rolls (each a cat per dimension in LibTorch
// 1.13) and a permute-copy, forward and backward.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace psaq::model {

// int64 [H·W]: entry p is the row-major position in the H x W map of the token that is the p-th
// token of WindowPartition(roll(x, {-shift, -shift}, {1, 2}), window) flattened over windows (the
// windows in WindowPartition's order, tokens row-major in a window). shift may be 0 (the plain
// partition). REQUIRES (TORCH_CHECK): window > 0 divides height and width, 0 <= shift < window.
at::Tensor ShiftedWindowOrder(int64_t height, int64_t width, int window, int shift);

// The inverse permutation of `order` (int64 [L]): inverse[order[p]] = p.
at::Tensor InversePermutation(const at::Tensor& order);

// y[:, p, :] = x[:, order[p], :] for x [B, L, C]; the gradient is gathered back by `inverse`
// (which must be InversePermutation(order)), so forward and backward are one copy each and
// bit-identical to any other reordering of the same values. order and inverse: int64 [L] on x's
// device.
at::Tensor PermuteTokens(const at::Tensor& x, const at::Tensor& order, const at::Tensor& inverse);

}  // namespace psaq::model

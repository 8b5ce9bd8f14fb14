#include "model/token_permutation.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

namespace psaq::model {
namespace {

// index_select's own backward scatters with index_add_, which LibTorch 1.13 runs one index at a
// time on the CPU; for a permutation the gradient is just the inverse gather.
class PermuteTokensFunction : public torch::autograd::Function<PermuteTokensFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& order, const at::Tensor& inverse) {
    ctx->saved_data["inverse"] = inverse;
    return x.index_select(1, order);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const at::Tensor inverse = ctx->saved_data["inverse"].toTensor();
    return {grads[0].index_select(1, inverse), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor ShiftedWindowOrder(int64_t height, int64_t width, int window, int shift) {
  TORCH_CHECK(window > 0 && height % window == 0 && width % window == 0 && shift >= 0 &&
                  shift < window,
              "ShiftedWindowOrder: needs a window ", window, " that tiles ", height, "x", width,
              " and 0 <= shift ", shift, " < window");
  at::Tensor order = at::empty({height * width}, at::kLong);
  int64_t* o = order.data_ptr<int64_t>();
  int64_t p = 0;
  for (int64_t wr = 0; wr < height / window; ++wr) {
    for (int64_t wc = 0; wc < width / window; ++wc) {
      for (int64_t r = 0; r < window; ++r) {
        for (int64_t c = 0; c < window; ++c) {
          // roll by -shift: position (i, j) of the rolled map holds (i + shift, j + shift).
          const int64_t row = (wr * window + r + shift) % height;
          const int64_t col = (wc * window + c + shift) % width;
          o[p++] = row * width + col;
        }
      }
    }
  }
  return order;
}

at::Tensor InversePermutation(const at::Tensor& order) {
  TORCH_CHECK(order.dim() == 1 && order.scalar_type() == at::kLong,
              "InversePermutation: needs an int64 vector, got ", order.sizes());
  at::Tensor inverse = at::empty_like(order);
  inverse.index_put_({order}, at::arange(order.numel(), order.options()));
  return inverse;
}

at::Tensor PermuteTokens(const at::Tensor& x, const at::Tensor& order, const at::Tensor& inverse) {
  TORCH_CHECK(x.dim() == 3 && order.dim() == 1 && order.numel() == x.size(1) &&
                  inverse.sizes() == order.sizes(),
              "PermuteTokens: needs x [B, L, C] and orders [L], got ", x.sizes(), " and ",
              order.sizes());
  return PermuteTokensFunction::apply(x, order, inverse);
}

}  // namespace psaq::model

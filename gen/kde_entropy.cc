#include "gen/kde_entropy.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace psaq::gen {
namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

// float32 for half/bfloat16 (the official code's float32 grid would promote them), else as is.
at::ScalarType KdeComputeType(at::ScalarType t) {
  return (t == at::kHalf || t == at::kBFloat16) ? at::kFloat : t;
}

// torch.tensor(2*pi*var) then sqrt and reciprocal in that dtype.
double KdeKernelCoefficient(double bandwidth, at::ScalarType dtype) {
  const double var = bandwidth * bandwidth;
  const double two_pi_var = 2 * kPi * var;
  if (dtype == at::kFloat) {
    return static_cast<double>(1.0f / std::sqrt(static_cast<float>(two_pi_var)));
  }
  return 1.0 / std::sqrt(two_pi_var);
}

at::Tensor KdeGridFromRange(double s_min, double s_max, at::ScalarType dtype, c10::Device device,
                            const KdeOptions& options) {
  CheckKdeOptions(options);
  TORCH_CHECK(std::isfinite(s_min) && std::isfinite(s_max),
              "KdeGrid: similarities are not finite (min ", s_min, ", max ", s_max, ")");
  // Built on the CPU (as torch.linspace(...).cuda() does), so every device gets the same points.
  at::Tensor grid =
      at::linspace(s_min, s_max, options.grid_points, at::TensorOptions().dtype(dtype));
  return grid.to(device);  // [G]
}

at::Tensor KdeGrid(const at::Tensor& similarities, const KdeOptions& options) {
  CheckKdeOptions(options);
  TORCH_CHECK(similarities.numel() > 0 && at::isFloatingType(similarities.scalar_type()),
              "KdeGrid: expected non-empty floating-point similarities, got ", similarities.sizes(),
              " ", similarities.scalar_type());
  at::Tensor s = similarities.detach();
  return KdeGridFromRange(s.min().item<double>(), s.max().item<double>(),
                          KdeComputeType(s.scalar_type()), s.device(), options);
}

at::Tensor KdeDensity(const at::Tensor& similarities, const at::Tensor& grid,
                      const KdeOptions& options) {
  CheckKdeOptions(options);
  TORCH_CHECK(similarities.dim() == 2 && similarities.size(0) >= 1 && similarities.size(1) >= 1,
              "KdeDensity: expected similarities [B, M] with B, M >= 1, got ",
              similarities.sizes());
  TORCH_CHECK(grid.dim() == 1 && grid.numel() >= 1, "KdeDensity: expected grid [G], got ",
              grid.sizes());
  TORCH_CHECK(
      at::isFloatingType(similarities.scalar_type()) && at::isFloatingType(grid.scalar_type()),
      "KdeDensity: expected floating point, got ", similarities.scalar_type(), " and ",
      grid.scalar_type());
  TORCH_CHECK(similarities.device() == grid.device(), "KdeDensity: similarities on ",
              similarities.device(), " but grid on ", grid.device());
  at::Tensor s = similarities;
  const at::ScalarType dtype = KdeComputeType(s.scalar_type());
  if (s.scalar_type() != dtype) s = s.to(dtype);
  const int64_t b = s.size(0);
  const int64_t m = s.size(1);
  const int64_t g = grid.size(0);
  const double two_var = 2 * (options.bandwidth * options.bandwidth);
  const double coef = KdeKernelCoefficient(options.bandwidth, dtype);
  at::Tensor x = grid.view({1, g, 1});  // [1, G, 1]

  // One term of the official kernel: c * exp(-(x - s)^2 / (2h^2)) over a slice of M.
  auto kernel = [&](const at::Tensor& part) {  // part [B, m'] -> [B, G, m']
    at::Tensor diffs = x - part.view({b, 1, part.size(1)});
    return at::exp(-at::pow(diffs, 2) / two_var) * coef;
  };
  const int64_t chunk = options.chunk_size == 0 ? m : std::min(options.chunk_size, m);
  if (chunk == m) return kernel(s).mean(-1);  // [B, G], the official mean over M
  at::Tensor total;
  for (int64_t begin = 0; begin < m; begin += chunk) {
    at::Tensor part_sum = kernel(s.slice(1, begin, std::min(begin + chunk, m))).sum(-1);
    total = total.defined() ? total + part_sum : part_sum;
  }
  return total / static_cast<double>(m);  // [B, G]
}

at::Tensor DifferentialEntropy(const at::Tensor& density, const at::Tensor& grid,
                               double density_floor) {
  TORCH_CHECK(
      density.dim() == 2 && grid.dim() == 1 && density.size(1) == grid.size(0) && grid.size(0) >= 2,
      "DifferentialEntropy: expected density [B, G] and grid [G] with G >= 2, got ",
      density.sizes(), " and ", grid.sizes());
  TORCH_CHECK(density_floor > 0, "DifferentialEntropy: density_floor must be > 0, got ",
              density_floor);
  at::Tensor p = density + density_floor;
  at::Tensor f = -1 * p * at::log(p);  // [B, G]
  const int64_t g = grid.size(0);
  // torch.trapz(f, x): dx in the grid's own dtype, then ((f_right + f_left) * dx).sum() / 2.
  at::Tensor dx = grid.slice(0, 1, g) - grid.slice(0, 0, g - 1);         // [G-1]
  return ((f.slice(1, 1, g) + f.slice(1, 0, g - 1)) * dx).sum(-1) / 2.;  // [B]
}

at::Tensor KdeEntropyOnGrid(const at::Tensor& similarities, const at::Tensor& grid,
                            const KdeOptions& options) {
  return DifferentialEntropy(KdeDensity(similarities, grid, options), grid, options.density_floor);
}

at::Tensor KdeEntropyPerImage(const at::Tensor& similarities, const KdeOptions& options) {
  return KdeEntropyOnGrid(similarities, KdeGrid(similarities, options), options);
}

}  // namespace psaq::gen

#include "gen/fused_entropy.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <stdexcept>
#include <string>

#include "gen/fused_entropy_cpu.h"
#include "gen/fused_entropy_plan.h"
#include "gen/kde_entropy.h"
#include "gen/patch_similarity.h"

#ifdef PSAQ_WITH_CUDA
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "gen/fused_entropy_kernel.h"
#endif

namespace psaq::gen {
namespace {

void CheckUnit(const at::Tensor& unit, const char* what) {
  TORCH_CHECK(unit.dim() == 3 && unit.size(0) >= 1 && unit.size(1) >= 1 && unit.size(2) >= 1, what,
              ": expected unit rows [B', N', d] with B', N', d >= 1, got ", unit.sizes());
  TORCH_CHECK(unit.scalar_type() == at::kFloat || unit.scalar_type() == at::kDouble, what,
              ": expected float32 or float64 unit rows, got ", unit.scalar_type());
#ifdef PSAQ_WITH_CUDA
  TORCH_CHECK(unit.is_cpu() || unit.is_cuda(), what, ": unsupported device ", unit.device());
#else
  TORCH_CHECK(unit.is_cpu(), what, ": unsupported device ", unit.device(),
              " (psaq was built without CUDA kernels; KdeImplementation::kReference runs there)");
#endif
}

FusedKdeProblem ProblemOf(const at::Tensor& unit, int64_t batch_size, int64_t grid_points) {
  FusedKdeProblem p;
  p.windows = unit.size(0);
  p.tokens = unit.size(1);
  p.dim = unit.size(2);
  p.images = batch_size;
  p.grid_points = grid_points;
  p.element_bytes = static_cast<int64_t>(unit.element_size());
  return p;
}

int64_t CpuRowsPerTask(const FusedKdeProblem& p, const KdeOptions& options) {
  return FusedKdeRowsPerTask(p, options.chunk_size, at::get_num_threads());
}

// CUDA launches. CUDA tensors reach them only in CUDA builds (CheckUnit rejects them otherwise).
#ifdef PSAQ_WITH_CUDA
// Plans the kernels; the planner's std::invalid_argument becomes a c10::Error with context.
FusedKdePlan CudaPlan(const FusedKdeProblem& p, const char* what) {
  std::string error;
  try {
    return PlanFusedKde(p);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  TORCH_CHECK(false, what, " (CUDA): ", error);
  return {};  // not reached
}

cudaStream_t CurrentStream(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

at::Tensor Workspace(const FusedKdePlan& plan, const at::Tensor& like) {
  return at::empty({plan.workspace_bytes}, like.options().dtype(at::kByte));
}

template <typename T>
void MinMaxCuda(const at::Tensor& unit, const FusedKdeProblem& p, double* lo, double* hi) {
  const c10::cuda::CUDAGuard guard(unit.device());
  const FusedKdePlan plan = CudaPlan(p, "FusedSimilarityRange");
  at::Tensor workspace = Workspace(plan, unit);
  at::Tensor min_max = at::empty({2}, unit.options().dtype(at::kDouble));
  C10_CUDA_CHECK(LaunchFusedSimilarityMinMax<T>(unit.data_ptr<T>(), plan, workspace.data_ptr(),
                                                min_max.data_ptr<double>(), CurrentStream(unit)));
  const at::Tensor host = min_max.cpu();  // on the current stream: waits for the kernels
  *lo = host.data_ptr<double>()[0];
  *hi = host.data_ptr<double>()[1];
}

template <typename T>
void SumsCuda(const at::Tensor& unit, const at::Tensor& grid, T two_var, const FusedKdeProblem& p,
              at::Tensor& sums) {
  const c10::cuda::CUDAGuard guard(unit.device());
  const FusedKdePlan plan = CudaPlan(p, "FusedKdeDensity");
  at::Tensor workspace = Workspace(plan, unit);
  C10_CUDA_CHECK(LaunchFusedKdeSums<T>(unit.data_ptr<T>(), grid.data_ptr<T>(), two_var, plan,
                                       workspace.data_ptr(), sums.data_ptr<double>(),
                                       CurrentStream(unit)));
}

template <typename T>
void BackwardCuda(const at::Tensor& unit, const at::Tensor& grid, const at::Tensor& weights,
                  T two_var, const FusedKdeProblem& p, at::Tensor& grad) {
  const c10::cuda::CUDAGuard guard(unit.device());
  const FusedKdePlan plan = CudaPlan(p, "FusedKdeDensity backward");
  C10_CUDA_CHECK(LaunchFusedKdeBackward<T>(unit.data_ptr<T>(), grid.data_ptr<T>(),
                                           weights.data_ptr<double>(), two_var, plan,
                                           grad.data_ptr<T>(), CurrentStream(unit)));
}
#else
constexpr const char* kNoCuda = "CUDA tensor in a build without CUDA kernels";
template <typename T>
void MinMaxCuda(const at::Tensor&, const FusedKdeProblem&, double*, double*) {
  TORCH_INTERNAL_ASSERT(false, kNoCuda);
}
template <typename T>
void SumsCuda(const at::Tensor&, const at::Tensor&, T, const FusedKdeProblem&, at::Tensor&) {
  TORCH_INTERNAL_ASSERT(false, kNoCuda);
}
template <typename T>
void BackwardCuda(const at::Tensor&, const at::Tensor&, const at::Tensor&, T,
                  const FusedKdeProblem&, at::Tensor&) {
  TORCH_INTERNAL_ASSERT(false, kNoCuda);
}
#endif  // PSAQ_WITH_CUDA

// sums [B, G] (double) of exp(-(x_k - s)^2 / 2h^2) over each image's similarities.
at::Tensor KernelSums(const at::Tensor& unit, const at::Tensor& grid, const FusedKdeProblem& p,
                      const KdeOptions& options) {
  at::Tensor sums = at::empty({p.images, p.grid_points}, unit.options().dtype(at::kDouble));
  const double two_var = 2 * (options.bandwidth * options.bandwidth);
  AT_DISPATCH_FLOATING_TYPES(unit.scalar_type(), "FusedKdeDensity", [&] {
    const scalar_t tv = static_cast<scalar_t>(two_var);
    if (unit.is_cuda()) {
      SumsCuda<scalar_t>(unit, grid, tv, p, sums);
    } else {
      FusedKdeSumsCpu<scalar_t>(unit.data_ptr<scalar_t>(), grid.data_ptr<scalar_t>(), tv, p,
                                CpuRowsPerTask(p, options), sums.data_ptr<double>());
    }
  });
  return sums;
}

// dL/dU [B', N', d] from weights [B, G] (double): FusedKdeBackwardCpu's definition.
at::Tensor KernelBackward(const at::Tensor& unit, const at::Tensor& grid, const at::Tensor& weights,
                          const FusedKdeProblem& p, const KdeOptions& options) {
  at::Tensor grad = at::empty_like(unit, at::MemoryFormat::Contiguous);
  const double two_var = 2 * (options.bandwidth * options.bandwidth);
  AT_DISPATCH_FLOATING_TYPES(unit.scalar_type(), "FusedKdeDensityBackward", [&] {
    const scalar_t tv = static_cast<scalar_t>(two_var);
    if (unit.is_cuda()) {
      BackwardCuda<scalar_t>(unit, grid, weights, tv, p, grad);
    } else {
      FusedKdeBackwardCpu<scalar_t>(unit.data_ptr<scalar_t>(), grid.data_ptr<scalar_t>(),
                                    weights.data_ptr<double>(), tv, p, CpuRowsPerTask(p, options),
                                    grad.data_ptr<scalar_t>());
    }
  });
  return grad;
}

// unit [B', N', d], grid [G] -> density [B, G]; saves unit and grid, recomputes in backward.
class FusedKdeDensityFunction : public torch::autograd::Function<FusedKdeDensityFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& unit,
                            const at::Tensor& grid, int64_t batch_size, double bandwidth,
                            int64_t chunk_size) {
    ctx->save_for_backward({unit, grid});
    ctx->saved_data["batch_size"] = batch_size;
    ctx->saved_data["bandwidth"] = bandwidth;
    ctx->saved_data["chunk_size"] = chunk_size;
    const at::Tensor u = unit.contiguous();
    const KdeOptions options = Options(bandwidth, chunk_size);
    const FusedKdeProblem p = ProblemOf(u, batch_size, grid.size(0));
    const double coef = KdeKernelCoefficient(bandwidth, u.scalar_type());
    const at::Tensor sums = KernelSums(u, grid.contiguous(), p, options);
    return (sums * (coef / static_cast<double>(FusedKdeValuesPerImage(p))))
        .to(u.scalar_type());  // [B, G]
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "FusedKdeDensity is not twice differentiable (backward with create_graph); use "
                "KdeImplementation::kReference for higher-order gradients");
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const at::Tensor u = saved[0].contiguous();
    const at::Tensor grid = saved[1].contiguous();
    const double bandwidth = ctx->saved_data["bandwidth"].toDouble();
    const KdeOptions options = Options(bandwidth, ctx->saved_data["chunk_size"].toInt());
    const FusedKdeProblem p = ProblemOf(u, ctx->saved_data["batch_size"].toInt(), grid.size(0));
    // dL/ds = sum_k dL/dp_k * (coef / M) * e_k(s) * (x_k - s) / h^2.
    const double scale = KdeKernelCoefficient(bandwidth, u.scalar_type()) /
                         (static_cast<double>(FusedKdeValuesPerImage(p)) * bandwidth * bandwidth);
    const at::Tensor weights = (grad_outputs[0].to(at::kDouble) * scale).contiguous();  // [B, G]
    return {KernelBackward(u, grid, weights, p, options), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }

 private:
  static KdeOptions Options(double bandwidth, int64_t chunk_size) {
    KdeOptions o;
    o.bandwidth = bandwidth;
    o.chunk_size = chunk_size;
    return o;
  }
};

}  // namespace

std::pair<double, double> FusedSimilarityRange(const at::Tensor& unit_in,
                                               const KdeOptions& options) {
  CheckKdeOptions(options);
  CheckUnit(unit_in, "FusedSimilarityRange");
  const at::Tensor unit = unit_in.detach().contiguous();
  const FusedKdeProblem p = ProblemOf(unit, /*batch_size=*/1, options.grid_points);
  double lo = 0, hi = 0;
  AT_DISPATCH_FLOATING_TYPES(unit.scalar_type(), "FusedSimilarityRange", [&] {
    if (unit.is_cuda()) {
      MinMaxCuda<scalar_t>(unit, p, &lo, &hi);
    } else {
      FusedSimilarityMinMaxCpu<scalar_t>(unit.data_ptr<scalar_t>(), p, CpuRowsPerTask(p, options),
                                         &lo, &hi);
    }
  });
  return {lo, hi};
}

at::Tensor FusedKdeDensity(const at::Tensor& unit, const at::Tensor& grid, int64_t batch_size,
                           const KdeOptions& options) {
  CheckKdeOptions(options);
  CheckUnit(unit, "FusedKdeDensity");
  TORCH_CHECK(grid.dim() == 1 && grid.size(0) >= 2,
              "FusedKdeDensity: expected grid [G], G >= 2, got ", grid.sizes());
  TORCH_CHECK(grid.scalar_type() == unit.scalar_type() && grid.device() == unit.device(),
              "FusedKdeDensity: grid (", grid.scalar_type(), ", ", grid.device(),
              ") must have the unit rows' dtype and device (", unit.scalar_type(), ", ",
              unit.device(), ")");
  TORCH_CHECK(batch_size >= 1 && unit.size(0) % batch_size == 0, "FusedKdeDensity: unit rows ",
              unit.sizes(), " do not split into batch_size=", batch_size, " images (B' % B != 0)");
  return FusedKdeDensityFunction::apply(unit, grid.detach(), batch_size, options.bandwidth,
                                        options.chunk_size);
}

at::Tensor FusedPatchSimilarityEntropyPerImage(const at::Tensor& av_mean, int64_t batch_size,
                                               const KdeOptions& options) {
  CheckKdeOptions(options);
  TORCH_CHECK(batch_size >= 1, "FusedPatchSimilarityEntropyPerImage: batch_size must be >= 1, got ",
              batch_size);
  TORCH_CHECK(
      av_mean.dim() == 3 && av_mean.size(0) >= batch_size && av_mean.size(0) % batch_size == 0,
      "FusedPatchSimilarityEntropyPerImage: features ", av_mean.sizes(),
      " do not split into batch_size=", batch_size, " images (B' % B != 0)");
  const at::Tensor unit = PatchUnitFeatures(av_mean);  // [B', N', d], differentiable
  const std::pair<double, double> range = FusedSimilarityRange(unit, options);
  const at::Tensor grid =
      KdeGridFromRange(range.first, range.second, unit.scalar_type(), unit.device(), options);
  const at::Tensor density = FusedKdeDensity(unit, grid, batch_size, options);  // [B, G]
  return DifferentialEntropy(density, grid, options.density_floor);             // [B]
}

}  // namespace psaq::gen

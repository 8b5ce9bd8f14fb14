// The CUDA kernels of the fused entropy (gen/fused_entropy_kernel.h) against their CPU reference,
// the CPU loops (gen/fused_entropy_cpu.h), on cudaMalloc'ed buffers: min/max, kernel sums and
// backward, float64 to kFloat64ParityRel; float32 against the float64 CPU loops on the same
// float32-rounded inputs, no farther than kFloat32ReferenceErrorFactor times the float32 CPU
// loops (the float32 computation is ill-conditioned; see tests/gen/fused_entropy_test.cc). With
// CUDA LibTorch (PSAQ_WITH_CUDA) also the autograd entry point on CUDA tensors against the
// reference on the CPU. Skips without a usable GPU or without the kernels (PSAQ_WITH_CUDA_KERNELS).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "gen/fused_entropy_cpu.h"
#include "gen/fused_entropy_plan.h"
#include "gen/patch_similarity.h"
#include "tests/testing/tensor_near.h"
#include "tests/testing/tolerances.h"

#ifdef PSAQ_WITH_CUDA_KERNELS
#include <cuda_runtime_api.h>

#include "gen/fused_entropy_kernel.h"
#endif
#ifdef PSAQ_WITH_CUDA
#include "gen/fused_entropy.h"
#include "gen/patch_similarity_entropy.h"
#endif

namespace psaq::gen {
namespace {

#ifndef PSAQ_WITH_CUDA_KERNELS
TEST(FusedEntropyGpuTest, KernelsNotBuilt) {
  GTEST_SKIP() << "built without the CUDA kernels (PSAQ_BUILD_CUDA_KERNELS found no nvcc)";
}
#else

#define ASSERT_CUDA_OK(expr)                                                           \
  do {                                                                                 \
    const cudaError_t psaq_err = (expr);                                               \
    ASSERT_EQ(psaq_err, cudaSuccess) << #expr << ": " << cudaGetErrorString(psaq_err); \
  } while (0)

// Why no GPU can be used ("" when one can): the runtime's own error (e.g. insufficient driver).
std::string NoGpuReason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky error
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err);
  }
  return count == 0 ? "no CUDA device" : "";
}

#define SKIP_WITHOUT_GPU()                               \
  do {                                                   \
    const std::string why = NoGpuReason();               \
    if (!why.empty()) GTEST_SKIP() << "no GPU: " << why; \
  } while (0)

// A device copy of a CPU tensor's bytes (contiguous), freed on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(int64_t bytes) : bytes_(bytes) {
    if (cudaMalloc(&ptr_, static_cast<size_t>(std::max<int64_t>(bytes, 1))) != cudaSuccess) {
      ptr_ = nullptr;
    }
  }
  explicit DeviceBuffer(const at::Tensor& t) : DeviceBuffer(t.numel() * t.element_size()) {
    const at::Tensor c = t.contiguous();
    if (ptr_ != nullptr) {
      cudaMemcpy(ptr_, c.data_ptr(), static_cast<size_t>(bytes_), cudaMemcpyHostToDevice);
    }
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  bool ok() const { return ptr_ != nullptr; }
  // Copies the buffer into a new CPU tensor of `shape` and `dtype`.
  at::Tensor ToCpu(at::IntArrayRef shape, at::ScalarType dtype) const {
    at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dtype));
    cudaMemcpy(out.data_ptr(), ptr_, static_cast<size_t>(out.numel() * out.element_size()),
               cudaMemcpyDeviceToHost);
    return out;
  }

 private:
  void* ptr_ = nullptr;
  int64_t bytes_;
};

// One problem's inputs in float64 (unit rows of random features, the grid of their similarity
// range, random backward weights) and its answers from the CPU loops.
struct Case {
  FusedKdeProblem problem;
  at::Tensor unit, grid, weights;  // [B', N', d], [G], [B, G]
  double two_var = 2e-4;
};

Case MakeCase(int64_t windows, int64_t tokens, int64_t dim, int64_t images, at::ScalarType t,
              uint64_t seed) {
  at::manual_seed(seed);
  Case c;
  c.unit = PatchUnitFeatures(at::randn({windows, tokens + 1, dim}, at::kDouble)).to(t);
  c.problem = {windows, tokens, dim, images, 10, static_cast<int64_t>(c.unit.element_size())};
  const at::Tensor s = at::matmul(c.unit, c.unit.transpose(1, 2));
  c.grid = at::linspace(s.min().item<double>(), s.max().item<double>(), 10,
                        at::TensorOptions().dtype(t));
  c.weights = at::randn({images, 10}, at::kDouble);
  if (t == at::kFloat) c.two_var = static_cast<float>(c.two_var);  // the same value in both dtypes
  return c;
}

struct Results {
  double min = 0, max = 0;
  at::Tensor sums;  // [B, G] double
  at::Tensor grad;  // [B', N', d]
};

template <typename T>
Results CpuResults(const Case& c) {
  Results r;
  const FusedKdeProblem& p = c.problem;
  const int64_t rows = FusedKdeRowsPerTask(p, 0, at::get_num_threads());
  const at::Tensor unit = c.unit.contiguous(), grid = c.grid.contiguous();
  FusedSimilarityMinMaxCpu<T>(unit.data_ptr<T>(), p, rows, &r.min, &r.max);
  r.sums = at::empty({p.images, p.grid_points}, at::kDouble);
  FusedKdeSumsCpu<T>(unit.data_ptr<T>(), grid.data_ptr<T>(), static_cast<T>(c.two_var), p, rows,
                     r.sums.data_ptr<double>());
  r.grad = at::empty_like(unit);
  FusedKdeBackwardCpu<T>(unit.data_ptr<T>(), grid.data_ptr<T>(), c.weights.data_ptr<double>(),
                         static_cast<T>(c.two_var), p, rows, r.grad.data_ptr<T>());
  return r;
}

template <typename T>
void GpuResults(const Case& c, Results* r) {
  const FusedKdePlan plan = PlanFusedKde(c.problem);
  DeviceBuffer unit(c.unit), grid(c.grid), weights(c.weights);
  DeviceBuffer workspace(plan.workspace_bytes), min_max(2 * sizeof(double));
  DeviceBuffer sums(c.problem.images * c.problem.grid_points * sizeof(double));
  DeviceBuffer grad(c.unit.numel() * c.unit.element_size());
  for (const DeviceBuffer* b : {&unit, &grid, &weights, &workspace, &min_max, &sums, &grad}) {
    ASSERT_TRUE(b->ok()) << "cudaMalloc failed";
  }
  const T two_var = static_cast<T>(c.two_var);
  ASSERT_CUDA_OK(LaunchFusedSimilarityMinMax<T>(unit.get<T>(), plan, workspace.get<void>(),
                                                min_max.get<double>(), nullptr));
  ASSERT_CUDA_OK(LaunchFusedKdeSums<T>(unit.get<T>(), grid.get<T>(), two_var, plan,
                                       workspace.get<void>(), sums.get<double>(), nullptr));
  ASSERT_CUDA_OK(LaunchFusedKdeBackward<T>(unit.get<T>(), grid.get<T>(), weights.get<double>(),
                                           two_var, plan, grad.get<T>(), nullptr));
  ASSERT_CUDA_OK(cudaDeviceSynchronize());
  const at::Tensor mm = min_max.ToCpu({2}, at::kDouble);
  r->min = mm[0].item<double>();
  r->max = mm[1].item<double>();
  r->sums = sums.ToCpu({c.problem.images, c.problem.grid_points}, at::kDouble);
  r->grad = grad.ToCpu(c.unit.sizes(), c.unit.scalar_type());
}

struct Shape {
  int64_t windows, tokens, dim, images;  // tokens = N' (token 0 already dropped)
};
// ViT, Swin (N' = 48), odd sizes, B = 1, d = 1, a dim that shrinks the backward tile (float64).
const std::vector<Shape> kShapes = {{4, 16, 8, 4}, {2, 196, 64, 2}, {16, 48, 32, 2},
                                    {3, 5, 5, 3},  {5, 37, 3, 1},   {1, 1, 4, 1},
                                    {2, 9, 1, 2},  {2, 40, 150, 1}, {8, 17, 16, 4}};

TEST(FusedEntropyGpuTest, Float64KernelsMatchTheCpuLoops) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 1;
  for (const Shape& s : kShapes) {
    const Case c = MakeCase(s.windows, s.tokens, s.dim, s.images, at::kDouble, ++seed);
    const Results cpu = CpuResults<double>(c);
    Results gpu;
    GpuResults<double>(c, &gpu);
    SCOPED_TRACE("N'=" + std::to_string(s.tokens) + " d=" + std::to_string(s.dim));
    EXPECT_NEAR(gpu.min, cpu.min, 1e-14);
    EXPECT_NEAR(gpu.max, cpu.max, 1e-14);
    EXPECT_TENSOR_NEAR_REL(gpu.sums, cpu.sums, testing::kFloat64ParityRel);
    EXPECT_TENSOR_NEAR_REL(gpu.grad, cpu.grad, testing::kFloat64ParityRel);
  }
}

TEST(FusedEntropyGpuTest, Float32KernelsAreAsAccurateAsTheCpuLoops) {
  SKIP_WITHOUT_GPU();
  uint64_t seed = 100;
  for (const Shape& s : kShapes) {
    const Case c32 = MakeCase(s.windows, s.tokens, s.dim, s.images, at::kFloat, ++seed);
    Case c64 = c32;  // the same float32-rounded problem, solved in float64
    c64.unit = c32.unit.to(at::kDouble);
    c64.grid = c32.grid.to(at::kDouble);
    c64.problem.element_bytes = 8;
    const Results cpu64 = CpuResults<double>(c64);
    const Results cpu32 = CpuResults<float>(c32);
    Results gpu32;
    GpuResults<float>(c32, &gpu32);
    SCOPED_TRACE("N'=" + std::to_string(s.tokens) + " d=" + std::to_string(s.dim));
    EXPECT_NEAR(gpu32.min, cpu32.min, 1e-6);
    EXPECT_NEAR(gpu32.max, cpu32.max, 1e-6);
    for (const auto& [gpu, cpu, ref] : {std::make_tuple(gpu32.sums, cpu32.sums, cpu64.sums),
                                        std::make_tuple(gpu32.grad, cpu32.grad, cpu64.grad)}) {
      const double tol =
          std::max(testing::kFloat32KernelRel,
                   testing::kFloat32ReferenceErrorFactor * testing::CompareTensors(cpu, ref).ratio);
      EXPECT_TENSOR_NEAR_REL(gpu, ref, tol);
    }
  }
}

TEST(FusedEntropyGpuTest, InconsistentPlanIsRejectedWithoutLaunching) {
  // No device needed: the launchers validate the plan before any CUDA call.
  FusedKdePlan plan = PlanFusedKde({2, 8, 4, 1, 10, 8});
  EXPECT_EQ(LaunchFusedKdeSums<float>(nullptr, nullptr, 1.0f, plan, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);  // a float64 plan for float32 data
  plan.pairs.blocks += 1;
  EXPECT_EQ(LaunchFusedSimilarityMinMax<double>(nullptr, plan, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
  plan = PlanFusedKde({2, 8, 4, 1, 10, 8});
  plan.workspace_bytes = 0;
  EXPECT_EQ(LaunchFusedKdeSums<double>(nullptr, nullptr, 1.0, plan, nullptr, nullptr, nullptr),
            cudaErrorInvalidValue);
}

#ifdef PSAQ_WITH_CUDA
TEST(FusedEntropyGpuTest, AutogradEntryPointOnCudaTensorsMatchesTheCpuReference) {
  SKIP_WITHOUT_GPU();
  for (const Shape& s : {Shape{8, 197, 64, 8}, Shape{32, 49, 32, 4}}) {
    at::manual_seed(7);
    const at::Tensor f0 = at::randn({s.windows, s.tokens, s.dim}, at::kDouble);
    at::Tensor f_cpu = f0.clone().requires_grad_(true);
    at::Tensor f_gpu = f0.to(at::kCUDA).requires_grad_(true);
    const at::Tensor ref = PatchSimilarityEntropyPerImage(f_cpu, s.images);
    const at::Tensor got = FusedPatchSimilarityEntropyPerImage(f_gpu, s.images);
    ref.sum().backward();
    got.sum().backward();
    EXPECT_TRUE(got.is_cuda());
    EXPECT_TENSOR_NEAR_REL(got.cpu(), ref, testing::kFloat64ParityRel);
    EXPECT_TENSOR_NEAR_REL(f_gpu.grad().cpu(), f_cpu.grad(), testing::kFloat64ParityRel);
  }
}
#endif  // PSAQ_WITH_CUDA

#endif  // PSAQ_WITH_CUDA_KERNELS

}  // namespace
}  // namespace psaq::gen

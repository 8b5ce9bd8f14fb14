// NcclCommunicator on a real GPU. Runs as one process (an MPI singleton, world size 1) under
// ctest's "gpu" label, and is also valid under mpirun with one GPU per rank (values depend on the
// rank). Skips itself when psaq was built without NCCL or no CUDA device is usable.
#include <gtest/gtest.h>

#include <string>

#include "dist/nccl_communicator.h"

#ifdef PSAQ_WITH_NCCL
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "dist/mpi_context.h"
#include "dist/nccl_check.h"
#endif

namespace psaq::dist {
namespace {

#ifndef PSAQ_WITH_NCCL

TEST(NcclGpuTest, SkippedWithoutNccl) {
  static_assert(!kNcclCompiled);
  GTEST_SKIP() << "psaq was built without NCCL (PSAQ_WITH_NCCL undefined)";
}

#else  // PSAQ_WITH_NCCL

// "" when a CUDA device can run the tests, else the reason to skip.
std::string WhyNoGpu() {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear the error so later CUDA calls are not poisoned
    return std::string("cudaGetDeviceCount: ") + cudaGetErrorName(rc) + ": " +
           cudaGetErrorString(rc);
  }
  if (count == 0) return "no CUDA device";
  return "";
}

// cudaMalloc'd storage for `n` values of T, filled from / read back to the host.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : n_(host.size()) {
    PSAQ_CUDA_CHECK(cudaMalloc(&data_, n_ * sizeof(T)));
    PSAQ_CUDA_CHECK(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* data() { return static_cast<T*>(data_); }
  std::vector<T> ToHost() const {
    std::vector<T> host(n_);
    PSAQ_CUDA_CHECK(cudaMemcpy(host.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  size_t n_;
  void* data_ = nullptr;
};

class NcclGpuTest : public ::testing::Test {
 protected:
  // MPI and the communicator live for the whole suite: MPI can be initialised once per process.
  static void SetUpTestSuite() {
    why_skip_ = WhyNoGpu();
    if (!why_skip_.empty()) return;
    mpi_ = std::make_unique<MpiContext>();
    NcclCommunicatorOptions options;
    options.device = 0;
    options.timeout_seconds = 120;
    comm_ = std::make_unique<NcclCommunicator>(options);
  }
  static void TearDownTestSuite() {
    comm_.reset();
    mpi_.reset();
  }
  void SetUp() override {
    if (!why_skip_.empty()) GTEST_SKIP() << why_skip_;
  }

  static inline std::string why_skip_;
  static inline std::unique_ptr<MpiContext> mpi_;
  static inline std::unique_ptr<NcclCommunicator> comm_;
};

TEST_F(NcclGpuTest, AllReduceOnDeviceBuffersMatchesTheHostReduction) {
  const int rank = comm_->rank(), size = comm_->size();
  constexpr int kN = 1000;
  std::vector<float> values(kN);
  std::vector<int32_t> ints(kN);
  for (int i = 0; i < kN; ++i) {
    values[i] = static_cast<float>(i + rank);
    ints[i] = (i + 2 * rank) % 7;
  }
  DeviceBuffer<float> sum(values), avg(values);
  DeviceBuffer<int32_t> max(ints), min(ints);
  comm_->AllReduceRaw(sum.data(), kN, ncclFloat32, ReduceOp::kSum);
  comm_->AllReduceRaw(avg.data(), kN, ncclFloat32, ReduceOp::kAvg);
  comm_->AllReduceRaw(max.data(), kN, ncclInt32, ReduceOp::kMax);
  comm_->AllReduceRaw(min.data(), kN, ncclInt32, ReduceOp::kMin);
  const std::vector<float> got_sum = sum.ToHost(), got_avg = avg.ToHost();
  const std::vector<int32_t> got_max = max.ToHost(), got_min = min.ToHost();
  for (int i = 0; i < kN; ++i) {
    float expected_sum = 0;
    int32_t expected_max = INT32_MIN, expected_min = INT32_MAX;
    for (int r = 0; r < size; ++r) {
      expected_sum += static_cast<float>(i + r);
      expected_max = std::max(expected_max, (i + 2 * r) % 7);
      expected_min = std::min(expected_min, (i + 2 * r) % 7);
    }
    ASSERT_EQ(got_sum[i], expected_sum) << "index " << i;
    ASSERT_EQ(got_avg[i], expected_sum / static_cast<float>(size)) << "index " << i;
    ASSERT_EQ(got_max[i], expected_max) << "index " << i;
    ASSERT_EQ(got_min[i], expected_min) << "index " << i;
  }
  EXPECT_GT(comm_->seconds_in_collectives(), 0.0);
}

TEST_F(NcclGpuTest, BroadcastAndAllGatherOnDeviceBuffers) {
  const int rank = comm_->rank(), size = comm_->size();
  const int root = size - 1;
  DeviceBuffer<int64_t> b(std::vector<int64_t>{10LL * rank, 10LL * rank + 1, 10LL * rank + 2});
  comm_->BroadcastRaw(b.data(), 3, ncclInt64, root);
  EXPECT_EQ(b.ToHost(), (std::vector<int64_t>{10LL * root, 10LL * root + 1, 10LL * root + 2}));

  DeviceBuffer<float> send(std::vector<float>{static_cast<float>(rank), 0.5f});
  DeviceBuffer<float> recv(std::vector<float>(2 * size, -1.0f));
  comm_->AllGatherRaw(send.data(), recv.data(), 2, ncclFloat32);
  std::vector<float> expected;
  for (int r = 0; r < size; ++r) {
    expected.push_back(static_cast<float>(r));
    expected.push_back(0.5f);
  }
  EXPECT_EQ(recv.ToHost(), expected);
  comm_->Barrier();
}

TEST_F(NcclGpuTest, BadArgumentsThrowBeforeEnqueuing) {
  EXPECT_THROW(comm_->AllReduceRaw(nullptr, 4, ncclFloat32, ReduceOp::kSum), c10::Error);
  DeviceBuffer<int32_t> ints(std::vector<int32_t>(4, 1));
  EXPECT_THROW(comm_->AllReduceRaw(ints.data(), 4, ncclInt32, ReduceOp::kAvg), c10::Error);
  EXPECT_THROW(comm_->BroadcastRaw(ints.data(), 4, ncclInt32, comm_->size()), c10::Error);
  EXPECT_EQ(comm_->backend(), "nccl");
  EXPECT_EQ(comm_->device(), 0);
}

#ifdef PSAQ_WITH_CUDA
// Only with a CUDA-enabled LibTorch: the at::Tensor path of the Communicator interface.
TEST_F(NcclGpuTest, TensorInterfaceOnCudaTensors) {
  const int size = comm_->size();
  at::Tensor t = at::full({4, 5}, 1.0 + comm_->rank(), at::TensorOptions().device(at::kCUDA, 0));
  comm_->AllReduce(t, ReduceOp::kSum);
  EXPECT_TRUE(at::equal(t.cpu(), at::full({4, 5}, size * (size + 1) / 2.0)));
  const at::Tensor all = comm_->AllGather(at::full({2}, comm_->rank(), t.options()));
  EXPECT_EQ(all.numel(), 2 * size);
  at::Tensor cpu = at::zeros({3});
  EXPECT_THROW(comm_->AllReduce(cpu, ReduceOp::kSum), c10::Error);
}
#endif

#endif  // PSAQ_WITH_NCCL

}  // namespace
}  // namespace psaq::dist

// MpiCommunicator under mpirun (2 and 3 ranks). Values depend on the rank and are small
// integers, so every reduction is exact and results are compared bit for bit.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dist/collective_util.h"
#include "dist/mpi_communicator.h"
#include "tests/testing/tensor_near.h"

namespace psaq::dist {
namespace {

constexpr int64_t kN = 11;

// Rank r's value at index i: varies with both, and the extreme over ranks is not always on the
// first or last rank.
double Value(int r, int64_t i, int size) {
  return static_cast<double>((r + 3 * i) % (size + 1)) - static_cast<double>(i);
}

at::Tensor RankTensor(int r, int size, at::ScalarType dtype) {
  at::Tensor t = at::empty({kN}, at::kDouble);
  for (int64_t i = 0; i < kN; ++i) t[i] = Value(r, i, size);
  return t.to(dtype);
}

// The reduction over ranks, computed locally in float64 (exact for these values).
at::Tensor Expected(ReduceOp op, int size, at::ScalarType dtype) {
  at::Tensor out = RankTensor(0, size, at::kDouble);
  for (int r = 1; r < size; ++r) {
    const at::Tensor v = RankTensor(r, size, at::kDouble);
    if (op == ReduceOp::kMin)
      out = at::minimum(out, v);
    else if (op == ReduceOp::kMax)
      out = at::maximum(out, v);
    else
      out = out + v;
  }
  out = out.to(dtype);
  // kAvg divides in the tensor's own dtype, like the communicator (one correctly rounded
  // division of an exact sum, so the result is bit-identical).
  if (op == ReduceOp::kAvg) out = out / size;
  return out;
}

// Rank-dependent contents of any dtype (bool: parity of index + rank).
at::Tensor Pattern(int r, at::ScalarType dtype) {
  const at::Tensor v = at::arange(kN, at::kDouble) * (r + 1) + r;
  return dtype == at::kBool ? at::arange(kN).add(r).remainder(2).eq(0) : v.to(dtype);
}

class MpiCommunicatorTest : public ::testing::Test {
 protected:
  MpiCommunicator comm_;
};

TEST_F(MpiCommunicatorTest, RankAndSizeMatchTheWorld) {
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(comm_.rank(), rank);
  EXPECT_EQ(comm_.size(), size);
  EXPECT_EQ(comm_.backend(), "mpi");
  int compare = MPI_UNEQUAL;
  MPI_Comm_compare(comm_.comm(), MPI_COMM_WORLD, &compare);
  EXPECT_EQ(compare, MPI_CONGRUENT);  // a duplicate, not the world itself
}

TEST_F(MpiCommunicatorTest, AllReduceIsExactForEveryOpAndDtype) {
  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kInt, at::kLong}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMin, ReduceOp::kMax}) {
      if (op == ReduceOp::kAvg && !at::isFloatingType(dtype)) continue;
      at::Tensor t = RankTensor(comm_.rank(), comm_.size(), dtype);
      comm_.AllReduce(t, op);
      SCOPED_TRACE(::testing::Message() << "dtype " << dtype << " op " << static_cast<int>(op));
      EXPECT_TENSOR_IDENTICAL(t, Expected(op, comm_.size(), dtype));
    }
  }
}

TEST_F(MpiCommunicatorTest, AllReduceKeepsTheShape) {
  at::Tensor t = at::full({2, 3}, comm_.rank() + 1.0);
  comm_.AllReduce(t, ReduceOp::kSum);
  const double sum = comm_.size() * (comm_.size() + 1) / 2.0;
  EXPECT_TENSOR_IDENTICAL(t, at::full({2, 3}, sum));
}

TEST_F(MpiCommunicatorTest, BroadcastFromTheLastRankCopiesAnyDtype) {
  const int root = comm_.size() - 1;
  for (at::ScalarType dtype :
       {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kByte, at::kBool, at::kHalf}) {
    at::Tensor t = Pattern(comm_.rank(), dtype);
    comm_.Broadcast(t, root);
    const at::Tensor expected = Pattern(root, dtype);
    SCOPED_TRACE(::testing::Message() << "dtype " << dtype);
    EXPECT_TENSOR_IDENTICAL(t, expected);
  }
}

TEST_F(MpiCommunicatorTest, AllGatherPlacesEachRankInOrder) {
  const at::Tensor mine = at::arange(6, at::kLong).reshape({2, 3}) + 100 * comm_.rank();
  const at::Tensor all = comm_.AllGather(mine);
  ASSERT_EQ(all.dim(), 1);
  ASSERT_EQ(all.numel(), 6 * comm_.size());
  EXPECT_EQ(all.scalar_type(), at::kLong);
  for (int r = 0; r < comm_.size(); ++r) {
    EXPECT_TENSOR_IDENTICAL(all.narrow(0, 6 * r, 6), at::arange(6, at::kLong) + 100 * r);
  }
  const at::Tensor bytes = comm_.AllGather(at::full({1}, comm_.rank() + 7, at::kByte));
  EXPECT_TENSOR_IDENTICAL(bytes, (at::arange(comm_.size()) + 7).to(at::kByte));
}

// Rank 0 writes a file only after a delay and just before entering the barrier; every other
// rank must see it right after the barrier. A barrier that did not wait would miss it.
TEST_F(MpiCommunicatorTest, BarrierWaitsForEveryRank) {
  long long token = comm_.rank() == 0 ? static_cast<long long>(getpid()) : 0;
  MPI_Bcast(&token, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
  const std::filesystem::path marker =
      std::filesystem::temp_directory_path() / ("psaq_barrier_" + std::to_string(token));
  const double before = comm_.seconds_in_collectives();
  if (comm_.rank() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::ofstream(marker) << "here\n";
  }
  comm_.Barrier();
  EXPECT_TRUE(std::filesystem::exists(marker)) << marker;
  EXPECT_GT(comm_.seconds_in_collectives(), before);
  comm_.Barrier();  // everyone has looked; now remove it
  if (comm_.rank() == 0) std::filesystem::remove(marker);
}

TEST_F(MpiCommunicatorTest, SubCommunicatorReducesWithinItsGroup) {
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, comm_.rank() % 2, comm_.rank(), &half);
  {
    MpiCommunicator sub(half);
    at::Tensor t = at::full({1}, static_cast<int64_t>(comm_.rank()), at::kLong);
    sub.AllReduce(t, ReduceOp::kSum);
    int64_t expected = 0;
    for (int r = comm_.rank() % 2; r < comm_.size(); r += 2) expected += r;
    EXPECT_EQ(t.item<int64_t>(), expected);
    EXPECT_EQ(sub.size(), (comm_.size() - comm_.rank() % 2 + 1) / 2);
  }
  MPI_Comm_free(&half);
}

// Every rank makes the same bad call, so every rank throws before communicating.
TEST_F(MpiCommunicatorTest, BadArgumentsThrowOnEveryRankWithoutCommunicating) {
  at::Tensor non_contiguous = at::zeros({3, 4}).t();
  EXPECT_THROW(comm_.AllReduce(non_contiguous, ReduceOp::kSum), c10::Error);
  EXPECT_THROW(comm_.Broadcast(non_contiguous, 0), c10::Error);
  EXPECT_THROW(comm_.AllGather(non_contiguous), c10::Error);
  at::Tensor meta = at::empty({3}, at::TensorOptions().device(at::kMeta));
  EXPECT_THROW(comm_.AllReduce(meta, ReduceOp::kSum), c10::Error);
  at::Tensor bytes = at::zeros({3}, at::kByte);
  EXPECT_THROW(comm_.AllReduce(bytes, ReduceOp::kSum), c10::Error);
  at::Tensor ints = at::zeros({3}, at::kInt);
  EXPECT_THROW(comm_.AllReduce(ints, ReduceOp::kAvg), c10::Error);
  at::Tensor undefined;
  EXPECT_THROW(comm_.AllReduce(undefined, ReduceOp::kSum), c10::Error);
  at::Tensor ok = at::zeros({3});
  EXPECT_THROW(comm_.Broadcast(ok, comm_.size()), c10::Error);
  EXPECT_THROW(comm_.Broadcast(ok, -1), c10::Error);
  // The communicator still works afterwards.
  at::Tensor one = at::ones({1});
  comm_.AllReduce(one, ReduceOp::kSum);
  EXPECT_EQ(one.item<float>(), static_cast<float>(comm_.size()));
}

TEST_F(MpiCommunicatorTest, EmptyTensorsAreFine) {
  at::Tensor empty = at::zeros({0});
  comm_.AllReduce(empty, ReduceOp::kAvg);
  comm_.Broadcast(empty, 0);
  EXPECT_EQ(comm_.AllGather(empty).numel(), 0);
}

// dist/collective_util.h: the root's bytes everywhere, whatever the others pass (NUL included).
TEST_F(MpiCommunicatorTest, BroadcastStringGivesEveryRankTheRootsText) {
  const int root = comm_.size() - 1;
  const std::string mine = "rank " + std::to_string(comm_.rank()) + std::string(1, '\0') +
                           std::string(static_cast<size_t>(1000 * comm_.rank()), 'x');
  const std::string expected = "rank " + std::to_string(root) + std::string(1, '\0') +
                               std::string(static_cast<size_t>(1000 * root), 'x');
  EXPECT_EQ(BroadcastString(comm_, mine, root, at::kCPU), expected);
  // An empty root string is empty everywhere (one broadcast, not two).
  EXPECT_EQ(BroadcastString(comm_, comm_.rank() == 0 ? "" : "not empty", 0, at::kCPU), "");
}

// dist/collective_util.h: every rank's bytes, of different lengths (empty and NUL included).
TEST_F(MpiCommunicatorTest, AllGatherStringsGivesEveryRankEveryRanksBytes) {
  const auto text_of = [](int r) {
    return r == 0 ? std::string()
                  : "rank " + std::to_string(r) + std::string(1, '\0') +
                        std::string(static_cast<size_t>(777 * r), static_cast<char>('a' + r));
  };
  const std::vector<std::string> all = AllGatherStrings(comm_, text_of(comm_.rank()), at::kCPU);
  ASSERT_EQ(all.size(), static_cast<size_t>(comm_.size()));
  for (int r = 0; r < comm_.size(); ++r) EXPECT_EQ(all[r], text_of(r)) << "rank " << r;
  // All empty: empty everywhere (the second all-gather is skipped on every rank alike).
  const std::vector<std::string> none = AllGatherStrings(comm_, "", at::kCPU);
  EXPECT_EQ(none, std::vector<std::string>(static_cast<size_t>(comm_.size())));
}

}  // namespace
}  // namespace psaq::dist

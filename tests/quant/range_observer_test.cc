#include "quant/range_observer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <limits>

#include "tests/testing/tensor_near.h"

namespace psaq::quant {
namespace {

TEST(MinMaxObserverTest, TracksGlobalMinAndMax) {
  MinMaxObserver o;
  EXPECT_FALSE(o.initialized());
  EXPECT_THROW(o.Range(), c10::Error);
  o.Observe(at::tensor({1.5f, -0.25f, 3.0f}));
  EXPECT_TRUE(o.initialized());
  EXPECT_EQ(o.Range(), std::make_pair(-0.25, 3.0));
  o.Observe(at::tensor({-4.0f, 2.0f}));
  EXPECT_EQ(o.Range(), std::make_pair(-4.0, 3.0));
  o.Observe(at::empty({0}));  // empty tensors change nothing
  EXPECT_EQ(o.Range(), std::make_pair(-4.0, 3.0));
}

TEST(MinMaxObserverTest, AllPositiveInputsKeepAPositiveMin) {
  MinMaxObserver o;
  o.Observe(at::tensor({2.0f, 5.0f}));
  EXPECT_EQ(o.Range(), std::make_pair(2.0, 5.0));
}

TEST(MinMaxObserverTest, MaxOfExactlyZeroIsStillInitialised) {
  // PSAQ would treat x_max == 0 as "uninitialised"; our state keeps it and extends it.
  MinMaxObserver o;
  o.Observe(at::tensor({-3.0f, 0.0f}));
  o.Observe(at::tensor({-1.0f, -0.5f}));
  EXPECT_EQ(o.Range(), std::make_pair(-3.0, 0.0));
}

TEST(MinMaxObserverTest, MergeEqualsOneObserverSeeingBoth) {
  at::manual_seed(4);
  const at::Tensor a = at::randn({3, 17});
  const at::Tensor b = at::randn({5, 2}) * 4 + 1;
  MinMaxObserver both, left, right;
  both.Observe(a);
  both.Observe(b);
  left.Observe(a);
  right.Observe(b);
  left.Merge(right);
  EXPECT_EQ(left.Range(), both.Range());
  EXPECT_TENSOR_IDENTICAL(left.state(), both.state());
}

TEST(MinMaxObserverTest, NothingObservedIsTheMergeIdentity) {
  MinMaxObserver seen, empty;
  seen.Observe(at::tensor({-1.0f, 7.0f}));
  const at::Tensor before = seen.state();
  seen.Merge(empty);
  EXPECT_TENSOR_IDENTICAL(seen.state(), before);
  empty.Merge(seen);
  EXPECT_EQ(empty.Range(), std::make_pair(-1.0, 7.0));
}

TEST(MinMaxObserverTest, StateRoundTripsAndIsValidated) {
  MinMaxObserver o, copy;
  o.Observe(at::tensor({-2.0f, 9.0f}));
  EXPECT_EQ(o.state_size(), 2);
  EXPECT_EQ(o.merge_op(), dist::ReduceOp::kMax);
  copy.set_state(o.state());
  EXPECT_EQ(copy.Range(), o.Range());
  EXPECT_THROW(copy.set_state(at::zeros({3}, at::kDouble)), c10::Error);
  EXPECT_THROW(copy.set_state(at::zeros({2}, at::kFloat)), c10::Error);
  copy.Reset();
  EXPECT_FALSE(copy.initialized());
}

TEST(MinMaxObserverTest, NonFiniteValuesThrow) {
  MinMaxObserver o;
  EXPECT_THROW(o.Observe(at::tensor({1.0f, std::numeric_limits<float>::infinity()})), c10::Error);
  EXPECT_THROW(o.Observe(at::tensor({1.0f, std::numeric_limits<float>::quiet_NaN()})), c10::Error);
  EXPECT_THROW(o.Observe(at::tensor({1, 2})), c10::Error);  // integers are not activations
}

TEST(MinMaxObserverTest, KindNamesRoundTrip) {
  EXPECT_EQ(ParseObserverKind(ObserverKindName(ObserverKind::kMinMax)), ObserverKind::kMinMax);
  EXPECT_THROW(ParseObserverKind("kl"), std::invalid_argument);
  EXPECT_NE(MakeObserver(ObserverKind::kMinMax), nullptr);
}

}  // namespace
}  // namespace psaq::quant

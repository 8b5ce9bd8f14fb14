#include "tests/testing/tensor_near.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <limits>
#include <sstream>

namespace psaq::testing {

std::string TensorDiff::Describe() const {
  std::ostringstream os;
  os << "max_abs_error=" << max_abs_error << " max_abs_ref=" << max_abs_ref << " ratio=" << ratio
     << " worst_index=" << worst_index;
  return os.str();
}

TensorDiff CompareTensors(const at::Tensor& actual, const at::Tensor& expected) {
  at::Tensor a = actual.detach().to(at::kCPU, at::kDouble).contiguous().reshape({-1});
  at::Tensor e = expected.detach().to(at::kCPU, at::kDouble).contiguous().reshape({-1});
  TensorDiff d;
  if (a.numel() == 0) return d;
  at::Tensor err = (a - e).abs();
  d.worst_index = err.argmax().item<int64_t>();
  d.max_abs_error = err.max().item<double>();
  d.max_abs_ref = e.abs().max().item<double>();
  d.ratio = d.max_abs_error / std::max(d.max_abs_ref, std::numeric_limits<double>::min());
  return d;
}

::testing::AssertionResult TensorsNearRel(const at::Tensor& actual, const at::Tensor& expected,
                                          double rel_tol, const std::string& what) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << what << ": shape " << actual.sizes() << " != expected " << expected.sizes();
  }
  const TensorDiff d = CompareTensors(actual, expected);
  if (!(d.ratio <= rel_tol)) {
    at::Tensor a = actual.detach().to(at::kDouble).reshape({-1});
    at::Tensor e = expected.detach().to(at::kDouble).reshape({-1});
    auto fail = ::testing::AssertionFailure();
    fail << what << " " << actual.sizes() << ": " << d.Describe() << " > tol " << rel_tol;
    if (d.worst_index >= 0) {
      fail << " (actual " << a[d.worst_index].item<double>() << ", expected "
           << e[d.worst_index].item<double>() << ")";
    }
    return fail;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TensorsIdentical(const at::Tensor& actual, const at::Tensor& expected,
                                            const std::string& what) {
  if (actual.sizes() != expected.sizes() || actual.scalar_type() != expected.scalar_type()) {
    return ::testing::AssertionFailure() << what << ": " << actual.sizes() << " "
                                         << actual.scalar_type() << " vs expected "
                                         << expected.sizes() << " " << expected.scalar_type();
  }
  if (at::equal(actual.cpu(), expected.cpu())) return ::testing::AssertionSuccess();
  const TensorDiff d = CompareTensors(actual, expected);
  return ::testing::AssertionFailure() << what << " not bit-identical: " << d.Describe();
}

std::string GoldenDir() {
  const char* env = std::getenv("PSAQ_GOLDEN_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return std::string(PSAQ_TEST_DATA_DIR) + "/golden";
}

}  // namespace psaq::testing

// Loading torchvision's operator library (Debian's python3-torchvision, which CI installs: these
// tests fail, not skip, without it).
#include "model/detect/torchvision_ops.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace psaq::detect {
namespace {

TEST(TorchvisionOpsTest, FindsBothOperatorsInDebiansLibrary) {
  const TorchvisionOpsStatus& status = LoadTorchvisionOps();
  ASSERT_TRUE(status.available) << "install python3-torchvision: " << status.reason;
  EXPECT_NE(status.library.find("torchvision/_C"), std::string::npos) << status.library;
  EXPECT_TRUE(status.reason.empty()) << status.reason;
  EXPECT_TRUE(TorchvisionOpsAvailable());
  EXPECT_TRUE(TorchvisionOpsSupport(c10::kCPU));
  EXPECT_FALSE(TorchvisionOpsSupport(c10::kXLA));  // no torchvision build has XLA kernels
  // Later calls return the first status, whatever they ask for.
  EXPECT_EQ(&LoadTorchvisionOps({"/nonexistent/_C.so"}), &status);
  EXPECT_TRUE(LoadTorchvisionOps({"/nonexistent/_C.so"}).available);
}

TEST(TorchvisionOpsTest, ProbeReportsAMissingLibraryWithoutThrowing) {
  TorchvisionOpsStatus status;
  ASSERT_NO_THROW(status = ProbeTorchvisionOps({"/nonexistent/torchvision/_C.so"}));
  EXPECT_FALSE(status.available);
  EXPECT_EQ(status.library, "/nonexistent/torchvision/_C.so");
  EXPECT_NE(status.reason.find("cannot load /nonexistent/torchvision/_C.so"), std::string::npos)
      << status.reason;
}

TEST(TorchvisionOpsTest, ProbeReportsADependencyThatFailsToLoad) {
  const TorchvisionOpsStatus status =
      ProbeTorchvisionOps({"/nonexistent/torchvision/_C.so", {"/nonexistent/libpython3.so"}});
  EXPECT_FALSE(status.available);
  EXPECT_EQ(status.library, "/nonexistent/torchvision/_C.so");
  EXPECT_NE(status.reason.find("cannot load /nonexistent/libpython3.so (loaded before "
                               "/nonexistent/torchvision/_C.so)"),
            std::string::npos)
      << status.reason;
}

TEST(TorchvisionOpsTest, ProbeOfTheDefaultPathAgreesWithTheLoadedStatus) {
  const TorchvisionOpsStatus probe = ProbeTorchvisionOps({});
  EXPECT_EQ(probe.available, LoadTorchvisionOps().available) << probe.reason;
  EXPECT_EQ(probe.library, LoadTorchvisionOps().library);
}

TEST(TorchvisionOpsTest, NmsRunsThroughTheDispatcher) {
  ASSERT_TRUE(TorchvisionOpsAvailable()) << LoadTorchvisionOps().reason;
  const at::Tensor boxes =
      at::tensor({0.f, 0.f, 10.f, 10.f, 1.f, 1.f, 11.f, 11.f, 20.f, 20.f, 30.f, 30.f}).view({3, 4});
  const at::Tensor scores = at::tensor({0.5f, 0.9f, 0.1f});
  const at::Tensor keep = TorchvisionNms(boxes, scores, 0.5);
  ASSERT_EQ(keep.numel(), 2);
  EXPECT_EQ(keep[0].item<int64_t>(), 1);
  EXPECT_EQ(keep[1].item<int64_t>(), 2);
}

}  // namespace
}  // namespace psaq::detect

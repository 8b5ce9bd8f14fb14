#include "dist/collective_util.h"

#include <ATen/ATen.h>

namespace psaq::dist {

at::Device CollectiveDevice(const dist::Communicator& comm, const at::Device& model_device) {
  return comm.backend() == "mpi" ? at::Device(at::kCPU) : model_device;
}

bool AnyRank(dist::Communicator& comm, bool flag, const at::Device& device) {
  at::Tensor t = at::full({1}, flag ? 1 : 0, at::kInt).to(device);
  comm.AllReduce(t, dist::ReduceOp::kMax);
  return t.cpu().item<int>() != 0;
}

std::vector<double> GatherDoubles(dist::Communicator& comm, const std::vector<double>& values,
                                  const at::Device& device) {
  at::Tensor mine = at::tensor(values, at::kDouble).to(device).contiguous();
  at::Tensor all = comm.AllGather(mine).cpu().contiguous();
  const double* p = all.data_ptr<double>();
  return std::vector<double>(p, p + all.numel());
}

}  // namespace psaq::dist

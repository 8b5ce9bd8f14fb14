#include "dist/collective_util.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

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

std::string BroadcastString(dist::Communicator& comm, const std::string& text, int root,
                            const at::Device& device) {
  const bool mine = comm.rank() == root;
  at::Tensor size =
      at::full({1}, mine ? static_cast<int64_t>(text.size()) : 0, at::kLong).to(device);
  comm.Broadcast(size, root);
  const int64_t n = size.cpu().item<int64_t>();
  if (n == 0) return "";
  at::Tensor bytes = at::empty({n}, at::kByte);
  if (mine) std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  bytes = bytes.to(device);
  comm.Broadcast(bytes, root);
  bytes = bytes.cpu().contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                     static_cast<size_t>(n));
}

std::vector<std::string> AllGatherStrings(dist::Communicator& comm, const std::string& bytes,
                                          const at::Device& device) {
  at::Tensor size = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong).to(device);
  const at::Tensor sizes = comm.AllGather(size).cpu().contiguous();
  const int64_t* n = sizes.data_ptr<int64_t>();
  const int64_t longest = *std::max_element(n, n + comm.size());
  std::vector<std::string> out(static_cast<size_t>(comm.size()));
  if (longest == 0) return out;
  // AllGather needs one length on every rank: pad to the longest.
  at::Tensor mine = at::zeros({longest}, at::kByte);
  if (!bytes.empty()) std::memcpy(mine.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  const at::Tensor all = comm.AllGather(mine.to(device)).cpu().contiguous();
  const auto* p = reinterpret_cast<const char*>(all.data_ptr<uint8_t>());
  for (int r = 0; r < comm.size(); ++r) out[r].assign(p + r * longest, static_cast<size_t>(n[r]));
  return out;
}

}  // namespace psaq::dist

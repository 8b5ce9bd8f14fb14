#include "launch/process.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "dist/check.h"
#include "dist/fatal.h"
#include "dist/logging.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"

#ifdef PSAQ_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace psaq::launch {
namespace {

// How long a rank other than 0 waits before aborting the job on an error, so that an error every
// rank meets (a missing file) is reported once, by rank 0, whose abort ends the others first.
constexpr auto kNonRootAbortDelay = std::chrono::milliseconds(1000);

const char* Getenv(const char* name) { return std::getenv(name); }

// Ranks on this node (MPI_COMM_TYPE_SHARED), whatever the launcher.
int LocalSize() {
  MPI_Comm node = MPI_COMM_NULL;
  PSAQ_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int size = 1;
  PSAQ_MPI_CHECK(MPI_Comm_size(node, &size));
  PSAQ_MPI_CHECK(MPI_Comm_free(&node));
  return size;
}

int ChooseThreads(int local_size) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const int node_cores = online > 0 ? static_cast<int>(online) : 1;
  const int allowed = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : node_cores;
  return IntraOpThreads(allowed, node_cores, local_size);
}

c10::Device SelectComputeDevice(const std::string& requested, int local_rank) {
  if (requested == "cpu") return c10::Device(c10::kCPU);
  TORCH_CHECK(requested == "cuda" || requested == "auto", "unknown --device '", requested, "'");
#ifdef PSAQ_WITH_CUDA
  const int count = static_cast<int>(c10::cuda::device_count());
  if (count == 0) {
    if (requested == "auto") return c10::Device(c10::kCPU);
    const char* visible = Getenv("CUDA_VISIBLE_DEVICES");
    throw std::runtime_error(std::string("--device=cuda: no CUDA device is visible") +
                             (visible != nullptr
                                  ? std::string(" (CUDA_VISIBLE_DEVICES=") + visible + ")"
                                  : std::string()));
  }
  const int index = dist::SelectDevice(local_rank, count);
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
#else
  (void)local_rank;
  if (requested == "auto") return c10::Device(c10::kCPU);
  throw std::runtime_error(
      "--device=cuda: this psaq is built against a CPU-only LibTorch; rebuild it with a CUDA "
      "LibTorch (CMAKE_PREFIX_PATH=<libtorch with CUDA>) or use --device=cpu");
#endif
}

// glog: stderr by default; with --log_dir, files there and rank 0 also on stderr. Non-root ranks
// keep WARNING and above.
void ConfigureLogging(bool is_root) {
  if (FLAGS_log_dir.empty()) {
    FLAGS_logtostderr = true;
  } else {
    FLAGS_logtostderr = false;
    FLAGS_alsologtostderr = is_root;
    FLAGS_stderrthreshold = google::GLOG_WARNING;
  }
  if (!is_root) FLAGS_minloglevel = google::GLOG_WARNING;
}

}  // namespace

std::string FormatErrorMessage(const std::string& text, bool with_detail) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    start = end + 1;
  }
  std::string out = lines.front().empty() ? "unknown error" : lines.front();
  if (!with_detail) return out;
  // Drop blank lines at the end (a message ending in '\n').
  while (lines.size() > 1 && lines.back().find_first_not_of(" \t") == std::string::npos) {
    lines.pop_back();
  }
  const size_t shown = std::min(lines.size() - 1, kMaxErrorDetailLines);
  for (size_t i = 1; i <= shown; ++i) out += "\n  " + lines[i];
  if (lines.size() - 1 > shown) {
    out += "\n  ... (" + std::to_string(lines.size() - 1 - shown) + " more lines)";
  }
  return out;
}

int IntraOpThreads(int allowed_cores, int node_cores, int local_size) {
  return std::max(1, std::min(allowed_cores, node_cores / std::max(local_size, 1)));
}

bool LaunchedAsRoot() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    const char* value = Getenv(name);
    if (value != nullptr && value[0] != '\0') return std::string(value) == "0";
  }
  return true;
}

ProcessContext::ProcessContext(dist::MpiContext& mpi, const ProcessOptions& options) : mpi_(mpi) {
  ConfigureLogging(mpi_.is_root());
  env_ = dist::LaunchEnvFromLookup(&Getenv);
  dist::CheckSlurmWorldSize(mpi_.size(), mpi_.rank(), env_);
  local_rank_ = dist::ResolveLocalRank(env_, MPI_COMM_WORLD);
  local_size_ = LocalSize();
  const char* omp = Getenv("OMP_NUM_THREADS");
  if (omp == nullptr || omp[0] == '\0') at::set_num_threads(ChooseThreads(local_size_));
  threads_ = at::get_num_threads();
  device_ = SelectComputeDevice(options.device, local_rank_);
  host_comm_ = std::make_unique<dist::MpiCommunicator>();
  if (mpi_.is_root()) {
    LOG(INFO) << options.program << " " << PSAQ_VERSION << ": " << mpi_.size() << " rank"
              << (mpi_.size() == 1 ? "" : "s") << " (" << local_size_ << " on this node), device "
              << device_.str() << ", " << threads_ << " intra-op thread"
              << (threads_ == 1 ? "" : "s") << " per rank"
              << (omp != nullptr && omp[0] != '\0' ? " (OMP_NUM_THREADS)" : "")
              << (options.configuration.empty() ? "" : "\nflags:\n" + options.configuration);
  }
}

ProcessContext::~ProcessContext() {
  device_comm_.reset();
  host_comm_.reset();
}

dist::Communicator& ProcessContext::device_comm() {
#ifdef PSAQ_WITH_NCCL
  if (device_.is_cuda()) {
    if (device_comm_ == nullptr) {
      dist::NcclCommunicatorOptions o;
      o.device = device_.index();
      device_comm_ = std::make_unique<dist::NcclCommunicator>(o);
    }
    return *device_comm_;
  }
#endif
  return *host_comm_;
}

int RunSubcommand(const Subcommand& sub, const ProcessOptions& options, int* argc, char*** argv) {
  if (!FLAGS_log_dir.empty() && !std::filesystem::is_directory(FLAGS_log_dir)) {
    if (LaunchedAsRoot()) {
      std::fprintf(stderr, "psaq %s: error: --log_dir=%s is not a directory\n", sub.name.c_str(),
                   FLAGS_log_dir.c_str());
    }
    return kUsageExitCode;
  }
  if (!google::IsGoogleLoggingInitialized()) google::InitGoogleLogging(options.program.c_str());

  std::unique_ptr<dist::MpiContext> mpi;
  std::unique_ptr<ProcessContext> process;
  std::string error;
  int code = 1;
  try {
    mpi = std::make_unique<dist::MpiContext>(argc, argv);
    process = std::make_unique<ProcessContext>(*mpi, options);
    const int status = sub.run(*process);
    process.reset();
    mpi.reset();
    return status;
  } catch (const UsageError& e) {
    error = e.what();
    code = kUsageExitCode;
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  // The detail of a multi-line message (the keys, files or values that matter) on rank 0; the
  // other ranks, whose abort usually follows rank 0's, print the summary line only.
  error = FormatErrorMessage(error, mpi != nullptr ? mpi->is_root() : LaunchedAsRoot());
  if (mpi == nullptr || mpi->size() == 1) {
    // Nobody to abort: report, shut down cleanly, exit with the status.
    std::fprintf(stderr, "psaq %s: error: %s\n", sub.name.c_str(), error.c_str());
    std::fflush(stderr);
    process.reset();
    mpi.reset();
    return code;
  }
  if (!mpi->is_root()) std::this_thread::sleep_for(kNonRootAbortDelay);
  dist::AbortJob(error, code);
}

}  // namespace psaq::launch

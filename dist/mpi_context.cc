#include "dist/mpi_context.h"

#include <c10/util/Exception.h>

#include <atomic>

#include "dist/check.h"
#include "dist/fatal.h"
#include "dist/logging.h"

namespace psaq::dist {
namespace {

std::atomic<bool> g_context_alive{false};

int ToMpi(MpiThreadLevel level) {
  return level == MpiThreadLevel::kSerialized ? MPI_THREAD_SERIALIZED : MPI_THREAD_FUNNELED;
}

}  // namespace

MpiContext::MpiContext(const MpiContextOptions& options) : MpiContext(nullptr, nullptr, options) {}

MpiContext::MpiContext(int* argc, char*** argv, const MpiContextOptions& options) {
  TORCH_CHECK(!g_context_alive.load(),
              "MpiContext: another MpiContext is alive; keep exactly one, owned by main");
  int finalized = 0;
  PSAQ_MPI_CHECK(MPI_Finalized(&finalized));
  TORCH_CHECK(!finalized,
              "MpiContext: MPI was already finalised; MPI cannot be initialised "
              "twice in one process");
  int initialized = 0;
  PSAQ_MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) {
    PSAQ_MPI_CHECK(MPI_Query_thread(&provided_));
  } else {
    const int required = ToMpi(options.thread_level);
    // MPI is not up yet, so MPI_Error_string may not work; the default handler aborts anyway.
    const int rc = MPI_Init_thread(argc, argv, required, &provided_);
    CHECK_EQ(rc, MPI_SUCCESS) << "MPI_Init_thread failed";
    // A throw below leaves MPI initialised and no context alive: finalising here would need
    // every rank, and the caller is about to report the error and exit.
    TORCH_CHECK(provided_ >= required, "MpiContext: MPI provides thread level ", provided_, " but ",
                required, " was requested");
    owns_mpi_ = true;
  }
  if (options.install_abort_on_fatal) InstallAbortOnFatal();
  PSAQ_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  PSAQ_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));
  g_context_alive = true;  // last: a constructor that threw leaves the slot free
}

MpiContext::~MpiContext() {
  if (owns_mpi_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      const int rc = MPI_Finalize();
      if (rc != MPI_SUCCESS) LOG(ERROR) << "MPI_Finalize failed: " << MpiErrorString(rc);
    }
  }
  g_context_alive = false;
}

bool MpiContext::Exists() { return g_context_alive.load(); }

}  // namespace psaq::dist

#include "gen/kde_options.h"

#include <c10/util/Exception.h>

#include <cmath>

namespace psaq::gen {

void CheckKdeOptions(const KdeOptions& o) {
  TORCH_CHECK(o.bandwidth > 0 && std::isfinite(o.bandwidth),
              "KdeOptions.bandwidth must be finite and > 0, got ", o.bandwidth);
  TORCH_CHECK(o.grid_points >= 2, "KdeOptions.grid_points must be >= 2, got ", o.grid_points);
  TORCH_CHECK(o.density_floor > 0, "KdeOptions.density_floor must be > 0, got ", o.density_floor);
  TORCH_CHECK(o.chunk_size >= 0, "KdeOptions.chunk_size must be >= 0, got ", o.chunk_size);
  // A value cast from an int (a flag, a JSON field) can lie outside the enum; reject it here
  // rather than fall through to the reference silently.
  TORCH_CHECK(o.implementation == KdeImplementation::kReference ||
                  o.implementation == KdeImplementation::kFused,
              "KdeOptions.implementation is not a KdeImplementation value: ",
              static_cast<int>(o.implementation));
}

}  // namespace psaq::gen

// Named tolerances for numerical tests. A tolerance is a ratio max|out - ref| / max|ref| unless
// its name says otherwise.
#pragma once

namespace psaq::testing {

// float64 paths against float64 references computed by timm/PyTorch (same math, different op
// order): parity of logits, block outputs, A·V features, entropies and input gradients.
inline constexpr double kFloat64ParityRel = 1e-9;
// float32 forward against the float64 reference.
inline constexpr double kFloat32ParityRel = 1e-4;
// A fused/fast float32 kernel against its straightforward float32 reference.
inline constexpr double kFloat32KernelRel = 1e-5;

}  // namespace psaq::testing

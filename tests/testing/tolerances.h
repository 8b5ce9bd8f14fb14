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
// For float32 computations that are ill-conditioned in float32 (the KDE entropy with h = 0.01
// turns ulp-level differences in the similarities into ~1e-5..1e-4 relative differences in the
// gradient): a fast path's distance to the float64 reference (same float32-rounded inputs) may
// be at most this factor times the straightforward float32 reference's own distance to it (or
// kFloat32KernelRel, whichever is larger).
inline constexpr double kFloat32ReferenceErrorFactor = 2.0;

}  // namespace psaq::testing

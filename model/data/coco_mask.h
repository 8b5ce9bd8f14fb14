// COCO's run-length mask codec, with the semantics of pycocotools 2.0.8 (common/maskApi.c and
// mask.py): the same runs, areas, boxes, IoUs, polygon rasterisation and compressed strings, so
// masks and IoUs computed here equal pycocotools' exactly (tests/model/data/coco_mask_test.cc
// holds them to pycocotools through a Python oracle).
//
// An Rle stores a binary mask of height x width as alternating run lengths over the pixels in
// column-major order (pixel (y, x) is linear index x * height + y), starting with a run of zeros
// (0 when the first pixel is set): counts [2, 3, 1] on a 3x2 mask is 0 0 1 | 1 1 0 by column.
// Valid when the counts sum to height * width (CheckRle).
//
// Errors: bad arguments (shapes, mismatched sizes, malformed strings, polygons past the limits
// below) throw c10::Error via TORCH_CHECK (a std::exception) with the reason; the callers that read
// files (model/data/coco_dataset.h) add the file and the entry.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace psaq::data {

struct Rle {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint32_t> counts;  // column-major runs, zeros first
};

// Most pixels a mask may have: 2^31 (pycocotools counts pixels in 32-bit unsigned integers).
inline constexpr int64_t kMaxMaskPixels = int64_t{1} << 31;
// Polygon coordinates must be finite and within +-kMaxPolygonCoordinate (pycocotools scales them
// by 5 into a C int; past about 4e8 that overflows).
inline constexpr double kMaxPolygonCoordinate = 1e7;
// Most boundary points one polygon may rasterise to (pycocotools walks every edge in steps of a
// fifth of a pixel and holds the points: 8 bytes each). A 640x480 image's outline is about 11,000.
inline constexpr int64_t kMaxPolygonBoundaryPoints = int64_t{1} << 25;

// Throws unless height, width >= 0, height * width <= kMaxMaskPixels and the counts sum to
// height * width. `what` prefixes the message, e.g. "RLE counts sum to 10, size [3, 4] has 12
// pixels".
void CheckRle(const Rle& rle, const std::string& what = "RLE");

// Encodes a mask as pycocotools' encode (rleEncode): `mask` is [H, W], bool or uint8 (non-zero is
// set), any device/layout. Canonical runs: no zero-length run except a leading one.
Rle Encode(const at::Tensor& mask);
// [N, H, W] -> N Rles.
std::vector<Rle> EncodeAll(const at::Tensor& masks);

// The mask as bool [height, width] on the CPU (rleDecode). Throws unless CheckRle passes.
at::Tensor Decode(const Rle& rle);

// Set pixels: the sum of the odd-indexed runs (rleArea). Does not validate the Rle.
int64_t Area(const Rle& rle);

// Tight box of the set pixels as pycocotools' toBbox (rleToBbox of 2.0.8): {x, y, w, h} in pixels,
// x/y the first set column/row, w/h the extent (1 for a single pixel); all zero for an empty mask
// (and for an Rle with fewer than two runs). A set run that crosses a column boundary spans every
// row, exactly as pycocotools computes it.
std::array<double, 4> ToBbox(const Rle& rle);

// IoU of every detection with every ground truth as pycocotools' iou (rleIou): result double
// [D, G] (D = dt.size(), G = gt.size(); [D, 0] or [0, G] when one side is empty). For a crowd
// ground truth (iscrowd[g] true) it is intersection over the detection's area. Zero when the
// boxes (ToBbox) do not overlap or the intersection is empty. REQUIRES: iscrowd.size() == G and
// every dt/gt of one size (throws; pycocotools returns -1 there).
at::Tensor Iou(const std::vector<Rle>& dt, const std::vector<Rle>& gt,
               const std::vector<bool>& iscrowd);

// Box IoU as pycocotools' iou on boxes (bbIou): dt [D, 4] and gt [G, 4] in {x, y, w, h} (any
// floating dtype, computed in double), result double [D, G]; a crowd ground truth divides by the
// detection's area. Boxes that only touch have IoU 0.
at::Tensor BoxIou(const at::Tensor& dt, const at::Tensor& gt, const std::vector<bool>& iscrowd);

// Rasterises one polygon {x0, y0, x1, y1, ...} (pixel coordinates, pixel centres at +0.5) exactly
// as pycocotools' frPyObjects -> rleFrPoly: boundary upsampled by 5, a pixel is set when its
// centre lies inside. REQUIRES: an even number >= 6 of coordinates, each finite and within
// +-kMaxPolygonCoordinate, at most kMaxPolygonBoundaryPoints boundary points, height/width >= 1.
Rle FromPolygon(const std::vector<double>& xy, int64_t height, int64_t width);
// The union of the polygons (as pycocotools' COCO.annToRLE: frPyObjects, then merge).
// REQUIRES: at least one polygon, each as FromPolygon requires.
Rle FromPolygons(const std::vector<std::vector<double>>& polygons, int64_t height, int64_t width);
// The mask of box {x, y, w, h} as pycocotools' frBbox (rasterised as a 4-point polygon).
Rle FromBbox(const std::array<double, 4>& xywh, int64_t height, int64_t width);

// Union (or intersection) of Rles of one size as pycocotools' merge (rleMerge); one Rle is
// returned as it is. REQUIRES: at least one, all of one size.
Rle Merge(const std::vector<Rle>& rles, bool intersect = false);

// COCO's compressed "counts" string (rleToString): LEB128-like, 6 bits per character in ASCII
// 48..111, runs from the third on stored as the difference to the run two before.
std::string ToString(const Rle& rle);
// Inverse of ToString (rleFrString) for a mask of height x width. Throws for a character outside
// 48..111, a value cut off at the end of the string, or a run outside [0, 2^32). Does not check
// that the runs sum to height * width (call CheckRle).
Rle FromString(const std::string& counts, int64_t height, int64_t width);

}  // namespace psaq::data

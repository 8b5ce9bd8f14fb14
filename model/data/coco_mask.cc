// Follows pycocotools 2.0.8's common/maskApi.c function by function (the function named in each
// comment); the arithmetic (32-bit unsigned runs, the C int casts that truncate toward zero, the
// order of the floating-point operations) is kept, because COCO's areas and IoUs depend on it.
#include "model/data/coco_mask.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace psaq::data {
namespace {

void CheckSize(int64_t height, int64_t width) {
  TORCH_CHECK(height >= 0 && width >= 0, "mask size [", height, ", ", width, "] is negative");
  TORCH_CHECK(height == 0 || width <= kMaxMaskPixels / height, "mask size [", height, ", ", width,
              "] has more than ", kMaxMaskPixels, " pixels");
}

bool SameSize(const Rle& a, const Rle& b) { return a.height == b.height && a.width == b.width; }

// rleMerge for two masks of one size.
std::vector<uint32_t> MergeTwo(const std::vector<uint32_t>& a_cnts,
                               const std::vector<uint32_t>& b_cnts, bool intersect) {
  std::vector<uint32_t> out;
  if (a_cnts.empty() || b_cnts.empty()) return a_cnts.empty() ? b_cnts : a_cnts;
  uint32_t ca = a_cnts[0], cb = b_cnts[0], cc = 0, ct = 1;
  bool v = false, va = false, vb = false;
  size_t a = 1, b = 1;
  while (ct > 0) {
    const uint32_t c = std::min(ca, cb);
    cc += c;
    ct = 0;
    ca -= c;
    if (ca == 0 && a < a_cnts.size()) {
      ca = a_cnts[a++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (cb == 0 && b < b_cnts.size()) {
      cb = b_cnts[b++];
      vb = !vb;
    }
    ct += cb;
    const bool vp = v;
    v = intersect ? (va && vb) : (va || vb);
    if (v != vp || ct == 0) {
      out.push_back(cc);
      cc = 0;
    }
  }
  return out;
}

}  // namespace

void CheckRle(const Rle& rle, const std::string& what) {
  TORCH_CHECK(rle.height >= 0 && rle.width >= 0, what, ": size [", rle.height, ", ", rle.width,
              "] is negative");
  TORCH_CHECK(rle.height == 0 || rle.width <= kMaxMaskPixels / rle.height, what, ": size [",
              rle.height, ", ", rle.width, "] has more than ", kMaxMaskPixels, " pixels");
  uint64_t sum = 0;
  for (uint32_t c : rle.counts) sum += c;
  const uint64_t pixels = static_cast<uint64_t>(rle.height) * static_cast<uint64_t>(rle.width);
  TORCH_CHECK(sum == pixels, what, ": counts sum to ", sum, ", size [", rle.height, ", ", rle.width,
              "] has ", pixels, " pixels");
}

Rle Encode(const at::Tensor& mask) {
  TORCH_CHECK(mask.dim() == 2, "Encode: mask must be [H, W], got ", mask.sizes());
  TORCH_CHECK(mask.scalar_type() == at::kBool || mask.scalar_type() == at::kByte,
              "Encode: mask must be bool or uint8, got ", mask.scalar_type());
  Rle rle;
  rle.height = mask.size(0);
  rle.width = mask.size(1);
  CheckSize(rle.height, rle.width);
  // [W, H] contiguous: the linear index is x * H + y, pycocotools' column-major order.
  const at::Tensor by_column = mask.to(at::kCPU).ne(0).t().contiguous();
  const bool* p = by_column.data_ptr<bool>();
  const int64_t n = by_column.numel();
  bool prev = false;
  uint32_t run = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (p[j] != prev) {
      rle.counts.push_back(run);
      run = 0;
      prev = p[j];
    }
    ++run;
  }
  rle.counts.push_back(run);
  return rle;
}

std::vector<Rle> EncodeAll(const at::Tensor& masks) {
  TORCH_CHECK(masks.dim() == 3, "EncodeAll: masks must be [N, H, W], got ", masks.sizes());
  std::vector<Rle> out;
  out.reserve(static_cast<size_t>(masks.size(0)));
  for (int64_t i = 0; i < masks.size(0); ++i) out.push_back(Encode(masks[i]));
  return out;
}

at::Tensor Decode(const Rle& rle) {
  CheckRle(rle, "Decode");
  at::Tensor by_column = at::empty({rle.width, rle.height}, at::kBool);
  bool* p = by_column.data_ptr<bool>();
  bool v = false;
  for (uint32_t c : rle.counts) {
    std::fill(p, p + c, v);
    p += c;
    v = !v;
  }
  return by_column.t().contiguous();
}

int64_t Area(const Rle& rle) {
  int64_t area = 0;
  for (size_t j = 1; j < rle.counts.size(); j += 2) area += rle.counts[j];
  return area;
}

std::array<double, 4> ToBbox(const Rle& rle) {
  // rleToBbox (2.0.8): only set runs count; one that wraps to the next column spans all rows.
  const size_t m = rle.counts.size() / 2 * 2;
  if (m == 0 || rle.height == 0 || rle.width == 0) return {0, 0, 0, 0};
  const auto h = static_cast<uint32_t>(rle.height);
  uint32_t xs = static_cast<uint32_t>(rle.width), ys = h, xe = 0, ye = 0, cc = 0;
  for (size_t j = 0; j < m; ++j) {
    const uint32_t start = cc;
    cc += rle.counts[j];
    if (j % 2 == 0 || rle.counts[j] == 0) continue;
    const uint32_t y_start = start % h, x_start = (start - y_start) / h;
    const uint32_t y_end = (cc - 1) % h, x_end = (cc - 1 - y_end) / h;
    xs = std::min(xs, x_start);
    xe = std::max(xe, x_end);
    if (x_start < x_end) {
      ys = 0;
      ye = h - 1;
    } else {
      ys = std::min(ys, y_start);
      ye = std::max(ye, y_end);
    }
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
          static_cast<double>(ye - ys + 1)};
}

namespace {

// bbIou on raw {x, y, w, h} arrays; o is [D, G] row-major.
void BoxIouInto(const double* dt, int64_t d_count, const double* gt, int64_t g_count,
                const std::vector<bool>& iscrowd, double* o) {
  for (int64_t g = 0; g < g_count; ++g) {
    const double* G = gt + 4 * g;
    const double ga = G[2] * G[3];
    const bool crowd = iscrowd[static_cast<size_t>(g)];
    for (int64_t d = 0; d < d_count; ++d) {
      const double* D = dt + 4 * d;
      const double da = D[2] * D[3];
      double& out = o[d * g_count + g];
      out = 0;
      const double w = std::fmin(D[2] + D[0], G[2] + G[0]) - std::fmax(D[0], G[0]);
      if (w <= 0) continue;
      const double h = std::fmin(D[3] + D[1], G[3] + G[1]) - std::fmax(D[1], G[1]);
      if (h <= 0) continue;
      const double i = w * h;
      const double u = crowd ? da : da + ga - i;
      out = i / u;
    }
  }
}

}  // namespace

at::Tensor BoxIou(const at::Tensor& dt, const at::Tensor& gt, const std::vector<bool>& iscrowd) {
  TORCH_CHECK(dt.dim() == 2 && dt.size(1) == 4, "BoxIou: dt must be [D, 4], got ", dt.sizes());
  TORCH_CHECK(gt.dim() == 2 && gt.size(1) == 4, "BoxIou: gt must be [G, 4], got ", gt.sizes());
  TORCH_CHECK(static_cast<int64_t>(iscrowd.size()) == gt.size(0), "BoxIou: ", iscrowd.size(),
              " iscrowd flags for ", gt.size(0), " ground truths");
  const at::Tensor d = dt.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor g = gt.to(at::kCPU, at::kDouble).contiguous();
  at::Tensor out = at::zeros({d.size(0), g.size(0)}, at::kDouble);
  BoxIouInto(d.data_ptr<double>(), d.size(0), g.data_ptr<double>(), g.size(0), iscrowd,
             out.data_ptr<double>());
  return out;
}

at::Tensor Iou(const std::vector<Rle>& dt, const std::vector<Rle>& gt,
               const std::vector<bool>& iscrowd) {
  TORCH_CHECK(iscrowd.size() == gt.size(), "Iou: ", iscrowd.size(), " iscrowd flags for ",
              gt.size(), " ground truths");
  const auto d_count = static_cast<int64_t>(dt.size());
  const auto g_count = static_cast<int64_t>(gt.size());
  for (const Rle& r : dt) {
    TORCH_CHECK(gt.empty() || SameSize(r, gt[0]), "Iou: detection mask [", r.height, ", ", r.width,
                "] and ground-truth mask [", gt[0].height, ", ", gt[0].width, "] differ in size");
  }
  for (const Rle& r : gt) {
    TORCH_CHECK(SameSize(r, gt[0]), "Iou: ground-truth masks differ in size");
  }
  std::vector<double> db, gb;
  for (const Rle& r : dt) {
    const auto b = ToBbox(r);
    db.insert(db.end(), b.begin(), b.end());
  }
  for (const Rle& r : gt) {
    const auto b = ToBbox(r);
    gb.insert(gb.end(), b.begin(), b.end());
  }
  at::Tensor out = at::zeros({d_count, g_count}, at::kDouble);
  double* o = out.data_ptr<double>();
  BoxIouInto(db.data(), d_count, gb.data(), g_count, iscrowd, o);
  // rleIou: the exact overlap only where the boxes overlap; a crowd ground truth divides by the
  // detection's area.
  for (int64_t g = 0; g < g_count; ++g) {
    for (int64_t d = 0; d < d_count; ++d) {
      double& cell = o[d * g_count + g];
      if (!(cell > 0)) continue;
      const auto& A = dt[static_cast<size_t>(d)].counts;
      const auto& B = gt[static_cast<size_t>(g)].counts;
      uint32_t ca = A[0], cb = B[0], ct = 1, inter = 0, uni = 0;
      bool va = false, vb = false;
      size_t a = 1, b = 1;
      while (ct > 0) {
        const uint32_t c = std::min(ca, cb);
        if (va || vb) {
          uni += c;
          if (va && vb) inter += c;
        }
        ct = 0;
        ca -= c;
        if (ca == 0 && a < A.size()) {
          ca = A[a++];
          va = !va;
        }
        ct += ca;
        cb -= c;
        if (cb == 0 && b < B.size()) {
          cb = B[b++];
          vb = !vb;
        }
        ct += cb;
      }
      if (inter == 0) {
        uni = 1;
      } else if (iscrowd[static_cast<size_t>(g)]) {
        uni = static_cast<uint32_t>(Area(dt[static_cast<size_t>(d)]));
      }
      cell = static_cast<double>(inter) / static_cast<double>(uni);
    }
  }
  return out;
}

Rle FromPolygon(const std::vector<double>& xy, int64_t height, int64_t width) {
  TORCH_CHECK(xy.size() >= 6 && xy.size() % 2 == 0,
              "polygon needs an even number >= 6 of coordinates, got ", xy.size());
  TORCH_CHECK(height >= 1 && width >= 1, "polygon: mask size [", height, ", ", width, "] is empty");
  CheckSize(height, width);
  for (double c : xy) {
    TORCH_CHECK(std::isfinite(c) && std::fabs(c) <= kMaxPolygonCoordinate, "polygon coordinate ", c,
                " is not finite or outside +-", kMaxPolygonCoordinate);
  }
  const double scale = 5;
  const size_t k = xy.size() / 2;
  // Upsample: vertices on the 5x grid (C int cast: truncation toward zero), then every grid point
  // along each edge.
  std::vector<int> x(k + 1), y(k + 1);
  for (size_t j = 0; j < k; ++j) x[j] = static_cast<int>(scale * xy[2 * j] + .5);
  x[k] = x[0];
  for (size_t j = 0; j < k; ++j) y[j] = static_cast<int>(scale * xy[2 * j + 1] + .5);
  y[k] = y[0];
  int64_t points = 0;
  for (size_t j = 0; j < k; ++j) {
    points += std::max(std::abs(x[j] - x[j + 1]), std::abs(y[j] - y[j + 1])) + 1;
  }
  TORCH_CHECK(points <= kMaxPolygonBoundaryPoints, "polygon boundary has ", points,
              " points at 5x resolution, more than ", kMaxPolygonBoundaryPoints);
  std::vector<int> u, v;
  u.reserve(static_cast<size_t>(points));
  v.reserve(static_cast<size_t>(points));
  for (size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    const double s =
        dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        u.push_back(t + xs);
        // Two consecutive vertices on the same 5x grid point give dx = dy = 0 and s = 0/0:
        // pycocotools converts that NaN to int (undefined in C), which x86-64 turns into
        // INT_MIN; the same value here, without the undefined conversion.
        const double yv = ys + s * t + .5;
        v.push_back(std::isnan(yv) ? std::numeric_limits<int>::min() : static_cast<int>(yv));
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(static_cast<int>(xs + s * t + .5));
      }
    }
  }
  // Downsample: where the boundary crosses a pixel column's centre, the first row whose centre is
  // below it; each crossing toggles the mask from there on down the column-major order.
  std::vector<uint32_t> a;
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / scale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > static_cast<double>(width - 1)) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / scale - .5;
    if (yd < 0) {
      yd = 0;
    } else if (yd > static_cast<double>(height)) {
      yd = static_cast<double>(height);
    }
    yd = std::ceil(yd);
    a.push_back(static_cast<uint32_t>(static_cast<int>(xd) * static_cast<int>(height) +
                                      static_cast<int>(yd)));
  }
  a.push_back(static_cast<uint32_t>(height * width));
  std::sort(a.begin(), a.end());
  uint32_t previous = 0;
  for (uint32_t& t : a) {
    const uint32_t here = t;
    t -= previous;
    previous = here;
  }
  // Runs from the toggle positions; a zero-length run merges its neighbours.
  Rle rle;
  rle.height = height;
  rle.width = width;
  size_t j = 0;
  rle.counts.push_back(a[j++]);
  while (j < a.size()) {
    if (a[j] > 0) {
      rle.counts.push_back(a[j++]);
    } else {
      ++j;
      if (j < a.size()) rle.counts.back() += a[j++];
    }
  }
  return rle;
}

Rle FromPolygons(const std::vector<std::vector<double>>& polygons, int64_t height, int64_t width) {
  TORCH_CHECK(!polygons.empty(), "segmentation has no polygon");
  std::vector<Rle> rles;
  rles.reserve(polygons.size());
  for (const auto& p : polygons) rles.push_back(FromPolygon(p, height, width));
  return Merge(rles);
}

Rle FromBbox(const std::array<double, 4>& xywh, int64_t height, int64_t width) {
  const double xs = xywh[0], xe = xs + xywh[2], ys = xywh[1], ye = ys + xywh[3];
  return FromPolygon({xs, ys, xs, ye, xe, ye, xe, ys}, height, width);
}

Rle Merge(const std::vector<Rle>& rles, bool intersect) {
  TORCH_CHECK(!rles.empty(), "Merge: no masks");
  Rle out = rles[0];
  for (size_t i = 1; i < rles.size(); ++i) {
    TORCH_CHECK(SameSize(rles[i], out), "Merge: mask ", i, " is [", rles[i].height, ", ",
                rles[i].width, "], mask 0 is [", out.height, ", ", out.width, "]");
    out.counts = MergeTwo(out.counts, rles[i].counts, intersect);
  }
  return out;
}

std::string ToString(const Rle& rle) {
  std::string s;
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    int64_t x = rle.counts[i];
    if (i > 2) x -= static_cast<int64_t>(rle.counts[i - 2]);
    bool more = true;
    while (more) {
      char c = static_cast<char>(x & 0x1f);
      x >>= 5;  // arithmetic: a negative difference ends in a run of sign bits
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c = static_cast<char>(c | 0x20);
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

Rle FromString(const std::string& counts, int64_t height, int64_t width) {
  Rle rle;
  rle.height = height;
  rle.width = width;
  size_t p = 0;
  while (p < counts.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      TORCH_CHECK(p < counts.size(), "compressed RLE ends inside a value");
      const int c = static_cast<unsigned char>(counts[p]) - 48;
      TORCH_CHECK(c >= 0 && c < 64, "compressed RLE has character '", counts[p],
                  "' (outside ASCII 48..111) at position ", p);
      TORCH_CHECK(k < 12, "compressed RLE value too long at position ", p);
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(-1) * (int64_t{1} << (5 * k));
    }
    const size_t m = rle.counts.size();
    if (m > 2) x += static_cast<int64_t>(rle.counts[m - 2]);
    TORCH_CHECK(x >= 0 && x <= int64_t{0xffffffff}, "compressed RLE run ", m, " is ", x,
                " (outside [0, 2^32))");
    rle.counts.push_back(static_cast<uint32_t>(x));
  }
  return rle;
}

}  // namespace psaq::data

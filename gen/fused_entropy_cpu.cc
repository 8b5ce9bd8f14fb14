#include "gen/fused_entropy_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace psaq::gen {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Tasks are row blocks [row_begin, row_end) of one window, window-major.
struct Tasks {
  Tasks(const FusedKdeProblem& p, int64_t rows_per_task)
      : rows(std::clamp<int64_t>(rows_per_task, 1, p.tokens)),
        per_window(CeilDiv(p.tokens, rows)),
        count(p.windows * per_window),
        windows_per_image(p.windows / p.images),
        tokens(p.tokens) {}
  int64_t window(int64_t t) const { return t / per_window; }
  int64_t image(int64_t t) const { return window(t) / windows_per_image; }
  int64_t row_begin(int64_t t) const { return (t % per_window) * rows; }
  int64_t row_end(int64_t t) const { return std::min(row_begin(t) + rows, tokens); }

  int64_t rows;
  int64_t per_window;
  int64_t count;
  int64_t windows_per_image;
  int64_t tokens;
};

// Per-thread scratch: one window's rows, transposed [d, N'], and one row of similarities [N'].
// The transpose makes the inner loop run over j with unit stride (vectorisable without
// reassociation: each s_ij still sums its d products in order).
template <typename T>
class WindowScratch {
 public:
  explicit WindowScratch(const FusedKdeProblem& p)
      : n_(p.tokens), d_(p.dim), transposed_(p.tokens * p.dim), row_(p.tokens) {}

  // Makes window `w` of `unit` current; returns its rows [N', d].
  const T* Load(const T* unit, int64_t w) {
    const T* rows = unit + w * n_ * d_;
    if (w != loaded_) {
      for (int64_t i = 0; i < n_; ++i) {
        for (int64_t c = 0; c < d_; ++c) transposed_[c * n_ + i] = rows[i * d_ + c];
      }
      loaded_ = w;
    }
    return rows;
  }

  // s_ij for j in [j_begin, N') (entries below j_begin are stale); row i of the current window.
  const T* Similarities(const T* rows, int64_t i, int64_t j_begin) {
    const T* ui = rows + i * d_;
    T* s = row_.data();
    std::fill(s + j_begin, s + n_, T(0));
    for (int64_t c = 0; c < d_; ++c) {
      const T a = ui[c];
      const T* col = transposed_.data() + c * n_;
      for (int64_t j = j_begin; j < n_; ++j) s[j] += a * col[j];
    }
    return s;
  }

 private:
  int64_t n_, d_;
  int64_t loaded_ = -1;
  std::vector<T> transposed_;
  std::vector<T> row_;
};

// The Gaussian terms e_k(s) = exp(-(x_k - s)^2 / two_var) on the grid, in T, with the
// reference's operation order (difference, square, divide, exp).
template <typename T>
struct KernelTerms {
  const T* x;
  int64_t g;
  T two_var;

  // acc[k] += weight * e_k(s).
  void Accumulate(T s, double weight, double* acc) const {
    for (int64_t k = 0; k < g; ++k) {
      const T diff = x[k] - s;
      const T arg = diff * diff / two_var;
      if (arg < ExpUnderflowArgument<T>()) acc[k] += weight * static_cast<double>(std::exp(-arg));
    }
  }

  // sum_k w[k] * e_k(s) * (x_k - s): the derivative of sum_k w[k] * e_k(s) * two_var / 2.
  double Slope(T s, const double* w) const {
    double out = 0;
    for (int64_t k = 0; k < g; ++k) {
      const T diff = x[k] - s;
      const T arg = diff * diff / two_var;
      if (arg < ExpUnderflowArgument<T>()) {
        out += w[k] * static_cast<double>(std::exp(-arg)) * static_cast<double>(diff);
      }
    }
    return out;
  }
};

template <typename T>
void Axpy(int64_t d, T a, const T* x, T* y) {
  for (int64_t c = 0; c < d; ++c) y[c] += a * x[c];
}

}  // namespace

int64_t FusedKdeRowsPerTask(const FusedKdeProblem& p, int64_t chunk_size, int num_threads) {
  CheckFusedKdeProblem(p);
  const int64_t n = p.tokens;
  if (chunk_size > 0) return std::clamp<int64_t>(chunk_size / n, 1, n);
  const int64_t wanted = 2 * std::max(num_threads, 1);
  if (p.windows >= wanted) return n;
  return std::max<int64_t>(1, CeilDiv(n, CeilDiv(wanted, p.windows)));
}

template <typename T>
void FusedSimilarityMinMaxCpu(const T* unit, const FusedKdeProblem& p, int64_t rows_per_task,
                              double* min, double* max) {
  CheckFusedKdeProblem(p);
  const Tasks tasks(p, rows_per_task);
  constexpr T kInf = std::numeric_limits<T>::infinity();
  std::vector<T> lo(tasks.count, kInf), hi(tasks.count, -kInf);
  std::vector<char> nan(tasks.count, 0);
  at::parallel_for(0, tasks.count, 1, [&](int64_t begin, int64_t end) {
    WindowScratch<T> scratch(p);
    for (int64_t t = begin; t < end; ++t) {
      const T* rows = scratch.Load(unit, tasks.window(t));
      for (int64_t i = tasks.row_begin(t); i < tasks.row_end(t); ++i) {
        const T* s = scratch.Similarities(rows, i, i);  // s_ij == s_ji: the triangle suffices
        for (int64_t j = i; j < p.tokens; ++j) {
          lo[t] = std::min(lo[t], s[j]);
          hi[t] = std::max(hi[t], s[j]);
          nan[t] |= std::isnan(s[j]) ? 1 : 0;
        }
      }
    }
  });
  if (std::find(nan.begin(), nan.end(), 1) != nan.end()) {
    *min = *max = std::numeric_limits<double>::quiet_NaN();  // as ATen's min/max propagate NaN
    return;
  }
  *min = *std::min_element(lo.begin(), lo.end());
  *max = *std::max_element(hi.begin(), hi.end());
}

template <typename T>
void FusedKdeSumsCpu(const T* unit, const T* grid, T two_var, const FusedKdeProblem& p,
                     int64_t rows_per_task, double* sums) {
  CheckFusedKdeProblem(p);
  const Tasks tasks(p, rows_per_task);
  const int64_t g = p.grid_points;
  const KernelTerms<T> terms{grid, g, two_var};
  std::vector<double> partial(tasks.count * g, 0.0);  // [tasks, G]
  at::parallel_for(0, tasks.count, 1, [&](int64_t begin, int64_t end) {
    WindowScratch<T> scratch(p);
    for (int64_t t = begin; t < end; ++t) {
      const T* rows = scratch.Load(unit, tasks.window(t));
      double* acc = partial.data() + t * g;
      for (int64_t i = tasks.row_begin(t); i < tasks.row_end(t); ++i) {
        const T* s = scratch.Similarities(rows, i, i);
        terms.Accumulate(s[i], 1.0, acc);  // the diagonal once, every other pair for both orders
        for (int64_t j = i + 1; j < p.tokens; ++j) terms.Accumulate(s[j], 2.0, acc);
      }
    }
  });
  std::fill(sums, sums + p.images * g, 0.0);
  for (int64_t t = 0; t < tasks.count; ++t) {  // task order: independent of the thread count
    double* out = sums + tasks.image(t) * g;
    for (int64_t k = 0; k < g; ++k) out[k] += partial[t * g + k];
  }
}

template <typename T>
void FusedKdeBackwardCpu(const T* unit, const T* grid, const double* weights, T two_var,
                         const FusedKdeProblem& p, int64_t rows_per_task, T* grad) {
  CheckFusedKdeProblem(p);
  const Tasks tasks(p, rows_per_task);
  const int64_t n = p.tokens, d = p.dim, g = p.grid_points;
  const KernelTerms<T> terms{grid, g, two_var};
  // A task that owns a whole window walks the triangle and adds each pair to both rows; a task
  // with a row block walks its rows against all columns, so tasks never write the same row.
  const bool triangle = tasks.rows == n;
  at::parallel_for(0, tasks.count, 1, [&](int64_t begin, int64_t end) {
    WindowScratch<T> scratch(p);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t w = tasks.window(t);
      const T* rows = scratch.Load(unit, w);
      const double* wb = weights + tasks.image(t) * g;
      T* out = grad + w * n * d;
      const int64_t i_begin = tasks.row_begin(t), i_end = tasks.row_end(t);
      std::fill(out + i_begin * d, out + i_end * d, T(0));
      for (int64_t i = i_begin; i < i_end; ++i) {
        const T* s = scratch.Similarities(rows, i, triangle ? i : 0);
        for (int64_t j = triangle ? i : 0; j < n; ++j) {
          const double slope = terms.Slope(s[j], wb);
          if (slope == 0) continue;  // every term underflowed: nothing to add
          const T factor = static_cast<T>(2 * slope);
          Axpy(d, factor, rows + j * d, out + i * d);
          if (triangle && j != i) Axpy(d, factor, rows + i * d, out + j * d);
        }
      }
    }
  });
}

#define PSAQ_INSTANTIATE(T)                                                                     \
  template void FusedSimilarityMinMaxCpu<T>(const T*, const FusedKdeProblem&, int64_t, double*, \
                                            double*);                                           \
  template void FusedKdeSumsCpu<T>(const T*, const T*, T, const FusedKdeProblem&, int64_t,      \
                                   double*);                                                    \
  template void FusedKdeBackwardCpu<T>(const T*, const T*, const double*, T,                    \
                                       const FusedKdeProblem&, int64_t, T*);
PSAQ_INSTANTIATE(float)
PSAQ_INSTANTIATE(double)
#undef PSAQ_INSTANTIATE

}  // namespace psaq::gen

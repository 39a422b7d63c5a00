// The NTM's whole unroll (controller, heads, addressing, read, write) in one C++ call, with a
// hand-written backward pass. Loaded by neural_memory/ntm/fused.py; see its docstring for the
// mathematics and for what is (and is not) supported. Matrix products go to ATen (BLAS); the
// per-row work of the heads runs in plain loops, parallel over the batch with at::parallel_for.
//
// Layout: every tensor here is contiguous, time first: x_proj (T, B, G0), h_seq (T, B, C),
// reads (T, B, R*M). Heads: read heads first, then write heads (H = R + W). A head's raw
// parameters are [key (M) | beta | gamma | gate | shift (K)] (address width A = M + 3 + K), then
// for each write head [erase (M) | add (M)], P values in all (NTMHeads' fused layout).

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

using torch::Tensor;

namespace {

// Subnormal numbers (magnitudes below about 1e-38 in float32) are common here -- a sharpened
// weighting has entries like 1e-40 -- and x86 arithmetic on them takes a slow path, measured to
// cost about a quarter of a training step. While a kernel runs, this thread treats them as zero
// (MXCSR flush-to-zero and denormals-are-zero), and the caller's mode is restored afterwards.
// Results differ from the plain path only by such subnormal amounts.
struct FlushDenormals {
#if defined(__x86_64__) || defined(_M_X64)
  unsigned int saved;
  FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040); }
  ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

struct Dims {
  int64_t T, B, N, M, R, W, H, K, P, A;  // A: one head's address width M + 3 + K
  double clip;  // <= 0: no clipping
  double gamma_max;  // <= 0: no cap on the sharpening exponent
};

// exp, log and tanh for float32, written so that loops calling them vectorise (the compiler
// does not vectorise the C library's; these are the Cephes single-precision approximations,
// within about 2 units in the last place, measured). float64 uses the C library.
inline float fast_exp(float x) {
  // exp(lo) is FLT_MIN; exp(hi) just below FLT_MAX (above it: clamped, finite)
  const float lo = -87.3365478515625f, hi = 88.7228240966796875f;
  const float keep = x < lo ? 0.0f : 1.0f;  // below: 0, as subnormals are flushed anyway
  x = std::min(std::max(x, lo), hi);
  // x = k ln 2 + r with k an integer (rounded by adding and subtracting 1.5 * 2^23) and
  // |r| <= ln 2 / 2; ln 2 split in two parts so that k ln 2 is exact enough.
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // times 2^k, built in the exponent bits; k = 128 (near the top, where p < 1) as 2 * 2^127
  const float top = k > 127.5f ? 1.0f : 0.0f;
  const int32_t ki = static_cast<int32_t>(k - top);
  const float scale = __builtin_bit_cast(float, (ki + 127) << 23);
  return p * (1.0f + top) * scale * keep;
}

// For x >= FLT_MIN (normal, positive), as here: x = m 2^e with m in [sqrt(1/2), sqrt(2)).
inline float fast_log(float x) {
  const int32_t bits = __builtin_bit_cast(int32_t, x);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 127);
  float m = __builtin_bit_cast(float, (bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const float big = m > 1.41421356237f ? 1.0f : 0.0f;
  m = m * (1.0f - 0.5f * big);
  e = e + big;
  const float f = m - 1.0f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y = y - 2.12194440e-4f * e - 0.5f * z;
  return (f + y) + 0.693359375f * e;
}

// |x| < 0.625: an odd polynomial; otherwise 1 - 2 / (exp(2|x|) + 1), with x's sign.
inline float fast_tanh(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float large = std::copysign(1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f), x);
  return ax < 0.625f ? small : large;
}

// The exp, log and tanh the kernel calls: its own in float32, the C library's in float64.
inline float vexp(float x) { return fast_exp(x); }
inline double vexp(double x) { return std::exp(x); }
inline float vlog(float x) { return fast_log(x); }
inline double vlog(double x) { return std::log(x); }
inline float vtanh(float x) { return fast_tanh(x); }
inline double vtanh(double x) { return std::tanh(x); }

template <typename S>
inline S sigmoid(S x) {
  return S(1) / (S(1) + vexp(-x));
}

// torch.nn.functional.softplus with beta 1, threshold 20, and its derivative.
template <typename S>
inline S softplus(S x) {
  return x > S(20) ? x : std::log1p(std::exp(x));
}
template <typename S>
inline S softplus_grad(S x) {
  if (x > S(20)) return S(1);
  S z = std::exp(x);
  return z / (z + S(1));
}

template <typename S>
inline void softmax_inplace(S* v, int64_t n) {
  S mx = v[0];
  for (int64_t i = 1; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
  S sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    v[i] = std::exp(v[i] - mx);
    sum += v[i];
  }
  for (int64_t i = 0; i < n; ++i) v[i] /= sum;
}

// The softmax of a row of n values, in place, with the vectorised exp (the content and the
// sharpened weightings).
template <typename S>
inline void softmax_row(S* v, int64_t n) {
  S mx = v[0];
#pragma omp simd reduction(max : mx)
  for (int64_t i = 1; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
  S sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    v[i] = vexp(v[i] - mx);
    sum += v[i];
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) v[i] /= sum;
}

template <typename S>
inline S dot(const S* a, const S* b, int64_t n) {
  S acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

// Rows of the memory summed at once in the loops over rows that accumulate over its columns.
constexpr int64_t kBlock = 32;

// out[i] = sum_m v[m] mt[m * N + i] (v = nullptr: sum_m mt[m * N + i]^2), for the N rows of a
// transposed memory mt (M, N). A block of kBlock rows is summed in registers, enough independent
// sums to keep the multiply-add units busy; the sum over m runs in increasing m for every row.
template <typename S>
inline void sum_columns(const S* mt, const S* v, int64_t M, int64_t N, S* out) {
  int64_t i0 = 0;
  for (; i0 + kBlock <= N; i0 += kBlock) {
    S acc[kBlock] = {};
    for (int64_t m = 0; m < M; ++m) {
      const S* row = mt + m * N + i0;
      if (v == nullptr) {
#pragma omp simd
        for (int64_t k = 0; k < kBlock; ++k) acc[k] += row[k] * row[k];
      } else {
        const S vm = v[m];
#pragma omp simd
        for (int64_t k = 0; k < kBlock; ++k) acc[k] += vm * row[k];
      }
    }
    for (int64_t k = 0; k < kBlock; ++k) out[i0 + k] = acc[k];
  }
  // The rows after the last full block: a running sum per row, column by column.
  for (int64_t i = i0; i < N; ++i) out[i] = 0;
  for (int64_t m = 0; m < M; ++m) {
    const S* row = mt + m * N;
    if (v == nullptr) {
      for (int64_t i = i0; i < N; ++i) out[i] += row[i] * row[i];
    } else {
      const S vm = v[m];
      for (int64_t i = i0; i < N; ++i) out[i] += vm * row[i];
    }
  }
}

template <typename S>
inline S clip_value(S x, double clip) {
  if (clip <= 0) return x;
  S c = static_cast<S>(clip);
  return x < -c ? -c : (x > c ? c : x);
}

// gamma - 1 = softplus(clipped raw), capped at gamma_max - 1 when gamma_max > 0 (as
// torch.clamp(max=...) does it: the gradient passes at the cap itself, not above it).
// sp: softplus of the clipped raw parameter.
template <typename S>
inline bool gamma_capped(S sp, const Dims& d) {
  return d.gamma_max > 0 && sp > static_cast<S>(d.gamma_max - 1);
}

// Forward of the heads for one step and one batch element, in three parts (content; shift and
// sharpening; memory), each a function below, called one after the other.
//   raw (P): the raw head parameters (before clipping); act (P): written, the activated ones.
//   mt (M, N): memory before the step, transposed; rnorm (N), cos (H, N): written.
//   wc (H, N): written, the content weighting softmax(beta * cos).
template <typename S>
void heads_forward_content(const Dims& d, const S* raw, S* act, const S* mt, S* rnorm, S* cos,
                           S* wc) {
  const int64_t N = d.N, M = d.M, K = d.K, A = d.A, H = d.H;
  const S eps = S(1e-8);
  for (int64_t h = 0; h < H; ++h) {
    const S* r = raw + h * A;
    S* a = act + h * A;
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) a[m] = vtanh(clip_value(r[m], d.clip));
    a[M] = softplus(clip_value(r[M], d.clip));
    const S sp = softplus(clip_value(r[M + 1], d.clip));
    a[M + 1] = S(1) + (gamma_capped(sp, d) ? static_cast<S>(d.gamma_max - 1) : sp);
    a[M + 2] = sigmoid(clip_value(r[M + 2], d.clip));
    for (int64_t j = 0; j < K; ++j) a[M + 3 + j] = clip_value(r[M + 3 + j], d.clip);
    softmax_inplace(a + M + 3, K);
  }
  for (int64_t wh = 0; wh < d.W; ++wh) {
    const int64_t off = H * A + wh * 2 * M;
#pragma omp simd
    for (int64_t m = 0; m < M; ++m) {
      act[off + m] = sigmoid(clip_value(raw[off + m], d.clip));
      act[off + M + m] = vtanh(clip_value(raw[off + M + m], d.clip));
    }
  }
  // The memory is held transposed, mt(m, i): every loop below runs along the N rows.
  sum_columns<S>(mt, nullptr, M, N, rnorm);
  for (int64_t i = 0; i < N; ++i) rnorm[i] = std::sqrt(rnorm[i]);
  for (int64_t h = 0; h < H; ++h) {
    const S* key = act + h * A;
    const S beta = key[M];
    const S kn = std::sqrt(dot(key, key, M));
    S* c = cos + h * N;
    S* zh = wc + h * N;
    sum_columns<S>(mt, key, M, N, c);
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) {
      c[i] /= kn * rnorm[i] + eps;
      zh[i] = beta * c[i];
    }
    softmax_row(zh, N);
  }
}

// pw (N + K - 1): written, w circularly padded by (K - 1) / 2 on each side, so that the shift
// ws[i] = sum_j s[j] w[i - o_j] (o_j = j - pad) reads pw[i + 2 pad - j], a contiguous window.
template <typename S>
inline void pad_circular(const S* w, S* pw, int64_t n, int64_t pad) {
  for (int64_t k = 0; k < pad; ++k) pw[k] = w[n - pad + k];
  for (int64_t i = 0; i < n; ++i) pw[pad + i] = w[i];
  for (int64_t k = 0; k < pad; ++k) pw[pad + n + k] = w[k];
}

//   wc (H, N): the content weighting; w_prev (H, N); wg, ws (H, N): written; logws (H, N):
//   written, log(ws + tiny); w (H, N): written, the sharpened weighting
//   softmax(gamma * logws). pw (N + K - 1): scratch.
template <typename S>
void heads_forward_shift(const Dims& d, const S* act, const S* wc, const S* w_prev, S* wg,
                         S* ws, S* logws, S* w, S* pw) {
  const int64_t N = d.N, M = d.M, K = d.K, A = d.A, H = d.H;
  const S tiny = std::numeric_limits<S>::min();
  const int64_t pad = (K - 1) / 2;
  for (int64_t h = 0; h < H; ++h) {
    const S* a = act + h * A;
    const S g = a[M + 2];
    const S* s = a + M + 3;
    const S* wch = wc + h * N;
    const S* wp = w_prev + h * N;
    S* wgh = wg + h * N;
    for (int64_t i = 0; i < N; ++i) wgh[i] = wp[i] + g * (wch[i] - wp[i]);
    S* wsh = ws + h * N;
    pad_circular(wgh, pw, N, pad);
    for (int64_t i = 0; i < N; ++i) wsh[i] = 0;
    for (int64_t j = 0; j < K; ++j) {  // shift o = j - pad: ws[i] += s[j] * wg[i - o]
      const S sj = s[j];
      const S* win = pw + 2 * pad - j;
      for (int64_t i = 0; i < N; ++i) wsh[i] += sj * win[i];
    }
    const S gamma = a[M + 1];
    S* lwh = logws + h * N;
    S* wh = w + h * N;
#pragma omp simd
    for (int64_t i = 0; i < N; ++i) {
      lwh[i] = vlog(wsh[i] + tiny);
      wh[i] = gamma * lwh[i];
    }
    softmax_row(wh, N);
  }
}

//   w (H, N): the final weightings; reads (R * M), mt_out (M, N): written.
template <typename S>
void heads_forward_memory(const Dims& d, const S* act, const S* mt, const S* w, S* reads,
                          S* mt_out) {
  const int64_t N = d.N, M = d.M, A = d.A, H = d.H, R = d.R;
  // Read (memory before the write).
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = 0; m < M; ++m) reads[r * M + m] = dot(w + r * N, mt + m * N, N);
  // Write: all erases (a product over write heads), then all adds (a sum).
  if (d.W == 1) {  // the common case, in one pass
    const S* wv = w + R * N;
    for (int64_t m = 0; m < M; ++m) {
      S* out = mt_out + m * N;
      const S* col = mt + m * N;
      const S e = act[H * A + m], a = act[H * A + M + m];
      for (int64_t i = 0; i < N; ++i) out[i] = col[i] * (S(1) - wv[i] * e) + wv[i] * a;
    }
    return;
  }
  for (int64_t m = 0; m < M; ++m) {
    S* out = mt_out + m * N;
    const S* col = mt + m * N;
    for (int64_t i = 0; i < N; ++i) out[i] = col[i];
    for (int64_t wh = 0; wh < d.W; ++wh) {
      const S* wv = w + (R + wh) * N;
      const S e = act[H * A + wh * 2 * M + m];
      for (int64_t i = 0; i < N; ++i) out[i] *= S(1) - wv[i] * e;
    }
    for (int64_t wh = 0; wh < d.W; ++wh) {
      const S* wv = w + (R + wh) * N;
      const S a = act[H * A + wh * 2 * M + M + m];
      for (int64_t i = 0; i < N; ++i) out[i] += wv[i] * a;
    }
  }
}

// Backward of the heads for one step and one batch element (memory transposed, as forward).
//   dmt_next (M, N): grad of the memory after the step; dmt (M, N): written, grad of the memory
//   before it. dreads (R * M): grad of this step's read vectors. dw (H, N): on entry the grad of
//   this step's weightings from later steps; on exit the grad of w_prev. draw (P): written.
template <typename S>
void heads_backward(const Dims& d, const S* raw, const S* act, const S* mt, const S* dmt_next,
                    S* dmt, const S* w_prev, const S* rnorm, const S* cos, const S* wc,
                    const S* wg, const S* ws, const S* logws, const S* w, const S* dreads,
                    S* dw, S* draw, S* scratch) {
  const int64_t N = d.N, M = d.M, K = d.K, A = d.A, H = d.H, R = d.R, W = d.W;
  const S eps = S(1e-8);
  const S tiny = std::numeric_limits<S>::min();
  const int64_t pad = (K - 1) / 2;
  S* dact = scratch;           // (P)
  S* drn = dact + d.P;         // (N)
  S* dws = drn + N;            // (N)
  S* dwg = dws + N;            // (N)
  S* dz = dwg + N;             // (N)
  S* keep = dz + N;            // (N)
  S* others = keep + N;        // (N)
  S* pw = others + N;          // (N + K - 1)
  S* dpw = pw + N + K - 1;     // (N + K - 1)
  for (int64_t p = 0; p < d.P; ++p) dact[p] = 0;
  for (int64_t i = 0; i < N; ++i) drn[i] = 0;
  // Write. keep(m, i) = prod_v (1 - w_v(i) e_v(m)); others = the same product without head wh.
  if (W == 1) {  // the common case, in one pass (others = 1)
    for (int64_t m = 0; m < M; ++m) {
      const S* g_out = dmt_next + m * N;
      const S* col = mt + m * N;
      S* dcol = dmt + m * N;
      const int64_t off = H * A;
      const S e = act[off + m], a = act[off + M + m];
      const S* wv = w + R * N;
      S* dwv = dw + R * N;
      S de = 0, da = 0;
#pragma omp simd reduction(+ : de, da)
      for (int64_t i = 0; i < N; ++i) {
        const S go = g_out[i];
        dcol[i] = go * (S(1) - wv[i] * e);
        dwv[i] += go * (a - col[i] * e);
        de -= go * col[i] * wv[i];
        da += go * wv[i];
      }
      dact[off + m] += de;
      dact[off + M + m] += da;
    }
  } else {
    for (int64_t m = 0; m < M; ++m) {
      const S* g_out = dmt_next + m * N;
      const S* col = mt + m * N;
      S* dcol = dmt + m * N;
      for (int64_t i = 0; i < N; ++i) keep[i] = 1;
      for (int64_t v = 0; v < W; ++v) {
        const S* wv = w + (R + v) * N;
        const S e = act[H * A + v * 2 * M + m];
        for (int64_t i = 0; i < N; ++i) keep[i] *= S(1) - wv[i] * e;
      }
      for (int64_t i = 0; i < N; ++i) dcol[i] = g_out[i] * keep[i];
      for (int64_t wh = 0; wh < W; ++wh) {
        for (int64_t i = 0; i < N; ++i) others[i] = 1;
        for (int64_t v = 0; v < W; ++v) {
          if (v == wh) continue;
          const S* wv = w + (R + v) * N;
          const S e = act[H * A + v * 2 * M + m];
          for (int64_t i = 0; i < N; ++i) others[i] *= S(1) - wv[i] * e;
        }
        const int64_t off = H * A + wh * 2 * M;
        const S e = act[off + m], a = act[off + M + m];
        const S* wv = w + (R + wh) * N;
        S* dwv = dw + (R + wh) * N;
        S de = 0, da = 0;
#pragma omp simd reduction(+ : de, da)
        for (int64_t i = 0; i < N; ++i) {
          const S go = g_out[i];
          dwv[i] += go * (a - col[i] * e * others[i]);
          de -= go * col[i] * wv[i] * others[i];
          da += go * wv[i];
        }
        dact[off + m] += de;
        dact[off + M + m] += da;
      }
    }
  }
  // Read: dw_r(i) += sum_m dr_r(m) M(i, m), summed over m in registers for a block of rows;
  // dM(i, m) += w_r(i) dr_r(m).
  for (int64_t r = 0; r < R; ++r) {
    const S* wr = w + r * N;
    const S* dr = dreads + r * M;
    S* dwr = dw + r * N;
    int64_t i0 = 0;
    for (; i0 + kBlock <= N; i0 += kBlock) {
      S acc[kBlock];
      for (int64_t k = 0; k < kBlock; ++k) acc[k] = dwr[i0 + k];
      for (int64_t m = 0; m < M; ++m) {
        const S* col = mt + m * N + i0;
        S* dcol = dmt + m * N + i0;
        const S drm = dr[m];
#pragma omp simd
        for (int64_t k = 0; k < kBlock; ++k) {
          acc[k] += drm * col[k];
          dcol[k] += wr[i0 + k] * drm;
        }
      }
      for (int64_t k = 0; k < kBlock; ++k) dwr[i0 + k] = acc[k];
    }
    for (int64_t m = 0; m < M; ++m)  // the rows after the last full block
      for (int64_t i = i0; i < N; ++i) {
        dwr[i] += dr[m] * mt[m * N + i];
        dmt[m * N + i] += wr[i] * dr[m];
      }
  }
  // Addressing, every head, in reverse stage order.
  for (int64_t h = 0; h < H; ++h) {
    const S* a = act + h * A;
    S* da = dact + h * A;
    const S* key = a;
    const S beta = a[M], gamma = a[M + 1], g = a[M + 2];
    const S* s = a + M + 3;
    const S* wh_ = w + h * N;
    const S* wsh = ws + h * N;
    const S* lwh = logws + h * N;
    const S* wgh = wg + h * N;
    const S* wch = wc + h * N;
    const S* wp = w_prev + h * N;
    const S* c = cos + h * N;
    S* dwh = dw + h * N;
    // Sharpen: w = softmax(gamma * log(ws + tiny)).
    S sum = dot(wh_, dwh, N);
    S dgamma = 0;
#pragma omp simd reduction(+ : dgamma)
    for (int64_t i = 0; i < N; ++i) {
      const S dy = wh_[i] * (dwh[i] - sum);
      dgamma += dy * lwh[i];
      dws[i] = dy * gamma / (wsh[i] + tiny);
    }
    // Shift: ws[i] = sum_j s[j] pw[i + 2 pad - j], pw = wg padded circularly.
    pad_circular(wgh, pw, N, pad);
    for (int64_t k = 0; k < N + 2 * pad; ++k) dpw[k] = 0;
    for (int64_t j = 0; j < K; ++j) {
      const S* win = pw + 2 * pad - j;
      S* dwin = dpw + 2 * pad - j;
      const S sj = s[j];
      S ds = 0;
#pragma omp simd reduction(+ : ds)
      for (int64_t i = 0; i < N; ++i) {
        ds += dws[i] * win[i];
        dwin[i] += sj * dws[i];
      }
      da[M + 3 + j] = ds;
    }
    for (int64_t i = 0; i < N; ++i) dwg[i] = dpw[pad + i];
    for (int64_t k = 0; k < pad; ++k) {
      dwg[N - pad + k] += dpw[k];
      dwg[k] += dpw[pad + N + k];
    }
    // Interpolation: wg = w_prev + g * (wc - w_prev). dw becomes the grad of w_prev.
    S dg = 0;
#pragma omp simd reduction(+ : dg)
    for (int64_t i = 0; i < N; ++i) {
      dg += dwg[i] * (wch[i] - wp[i]);
      dz[i] = g * dwg[i];  // grad of wc, for now
      dwh[i] = (S(1) - g) * dwg[i];
    }
    // Content: wc = softmax(beta * cos), cos = dot / (|k| |M_i| + eps).
    sum = dot(wch, dz, N);
    S dbeta = 0;
    const S kn = std::sqrt(dot(key, key, M));
    S dkn = 0;
#pragma omp simd reduction(+ : dbeta, dkn)
    for (int64_t i = 0; i < N; ++i) {
      const S dzi = wch[i] * (dz[i] - sum);
      dbeta += dzi * c[i];
      const S den = kn * rnorm[i] + eps;
      const S dcos = beta * dzi;
      const S dden = -dcos * c[i] / den;
      dkn += dden * rnorm[i];
      drn[i] += dden * kn;
      dz[i] = dcos / den;  // grad of the dot product key . M(i)
    }
    for (int64_t m = 0; m < M; ++m) {
      const S* col = mt + m * N;
      S* dcol = dmt + m * N;
      const S km = key[m];
      da[m] = dot(dz, col, N);
      for (int64_t i = 0; i < N; ++i) dcol[i] += dz[i] * km;
    }
    if (kn > 0)
      for (int64_t m = 0; m < M; ++m) da[m] += dkn * key[m] / kn;
    da[M] = dbeta;
    da[M + 1] = dgamma;
    da[M + 2] = dg;
  }
  // The row norms |M(i)|.
  for (int64_t i = 0; i < N; ++i) dz[i] = rnorm[i] > 0 ? drn[i] / rnorm[i] : S(0);
  for (int64_t m = 0; m < M; ++m) {
    const S* col = mt + m * N;
    S* dcol = dmt + m * N;
    for (int64_t i = 0; i < N; ++i) dcol[i] += dz[i] * col[i];
  }
  // Activations (and clipping) back to the raw parameters.
  const S clip = static_cast<S>(d.clip);
  auto mask = [&](S x) -> S { return (d.clip <= 0 || (x >= -clip && x <= clip)) ? S(1) : S(0); };
  for (int64_t h = 0; h < H; ++h) {
    const S* r = raw + h * A;
    const S* a = act + h * A;
    const S* da = dact + h * A;
    S* dr = draw + h * A;
    for (int64_t m = 0; m < M; ++m) dr[m] = da[m] * (S(1) - a[m] * a[m]) * mask(r[m]);
    dr[M] = da[M] * softplus_grad(clip_value(r[M], d.clip)) * mask(r[M]);
    // No gradient where the forward pass capped gamma (softplus recomputed only with a cap set).
    const bool capped = d.gamma_max > 0 && gamma_capped(softplus(clip_value(r[M + 1], d.clip)), d);
    dr[M + 1] = da[M + 1] * softplus_grad(clip_value(r[M + 1], d.clip)) * mask(r[M + 1]) *
                (capped ? S(0) : S(1));
    dr[M + 2] = da[M + 2] * a[M + 2] * (S(1) - a[M + 2]) * mask(r[M + 2]);
    S sum = 0;
    for (int64_t j = 0; j < K; ++j) sum += a[M + 3 + j] * da[M + 3 + j];
    for (int64_t j = 0; j < K; ++j)
      dr[M + 3 + j] = a[M + 3 + j] * (da[M + 3 + j] - sum) * mask(r[M + 3 + j]);
  }
  for (int64_t wh = 0; wh < W; ++wh) {
    const int64_t off = H * A + wh * 2 * M;
    for (int64_t m = 0; m < M; ++m) {
      const S e = act[off + m], ad = act[off + M + m];
      draw[off + m] = dact[off + m] * e * (S(1) - e) * mask(raw[off + m]);
      draw[off + M + m] = dact[off + M + m] * (S(1) - ad * ad) * mask(raw[off + M + m]);
    }
  }
}

Dims make_dims(const Tensor& x_proj, int64_t N, int64_t M, int64_t R, int64_t W, int64_t K,
               double clip, double gamma_max) {
  Dims d;
  d.T = x_proj.size(0);
  d.B = x_proj.size(1);
  d.N = N;
  d.M = M;
  d.R = R;
  d.W = W;
  d.H = R + W;
  d.K = K;
  d.A = d.M + 3 + K;
  d.P = d.H * d.A + W * 2 * d.M;
  d.clip = clip;
  d.gamma_max = gamma_max;
  return d;
}

}  // namespace

// Forward of the whole unroll. Returns {h_seq (T,B,C), reads (T,B,RM), saved...}; the saved
// tensors go back into fused_backward unchanged.
//
// weights[l]: layer l's (input, G) matrix, input = [below | h_prev] for an LSTM (below: the read
// vectors for layer 0, the layer underneath otherwise), [below] for a feedforward layer; the
// external input's share (and layer 0's bias) is already in x_proj. biases: layers 1 .. L-1.
std::vector<Tensor> fused_forward(Tensor x_proj, std::vector<Tensor> weights,
                                  std::vector<Tensor> biases, Tensor head_wt, Tensor head_b,
                                  Tensor mem0, Tensor reads0, Tensor w0, int64_t R, int64_t W,
                                  int64_t K, bool lstm, double clip, double gamma_max) {
  FlushDenormals flush;
  const int64_t L = static_cast<int64_t>(weights.size());
  const int64_t C = head_wt.size(0);
  Dims d = make_dims(x_proj, mem0.size(1), mem0.size(2), R, W, K, clip, gamma_max);
  auto opts = x_proj.options();
  const int64_t T = d.T, B = d.B, N = d.N, M = d.M, H = d.H, RM = R * d.M, P = d.P;
  const int64_t G = lstm ? 4 * C : C;
  const int64_t HN = H * N;
  Tensor mem = torch::empty({T + 1, B, M, N}, opts);  // transposed: (M, N) per sequence
  mem[0].copy_(mem0.transpose(1, 2));
  Tensor raw = torch::empty({T, B, P}, opts);
  Tensor act = torch::empty({T, B, P}, opts);
  Tensor rnorm = torch::empty({T, B, N}, opts);
  Tensor stages = torch::empty({6, T, B, H, N}, opts);  // cos, wc, wg, ws, w, log(ws + tiny)
  Tensor reads = torch::empty({T, B, RM}, opts);
  Tensor gates = torch::empty({L, T, B, G}, opts);  // LSTM: i, f, o, tanh(cand); FF: unused
  Tensor cells = torch::empty({L, T, B, C}, opts);  // LSTM: c
  Tensor tanhc = torch::empty({L, T, B, C}, opts);  // LSTM: tanh(c)
  Tensor hs = torch::empty({L, T, B, C}, opts);
  std::vector<Tensor> inputs;  // per layer (T, B, input): what weights[l] multiplied
  for (int64_t l = 0; l < L; ++l) inputs.push_back(torch::empty({T, B, weights[l].size(0)}, opts));
  Tensor pre = torch::empty({B, G}, opts);
  Tensor head_b_rows = head_b.expand({B, P});
  std::vector<Tensor> bias_rows;
  for (auto& b : biases) bias_rows.push_back(b.expand({B, G}));
  std::vector<Tensor> gates_l, cells_l, tanhc_l, hs_l;
  for (int64_t l = 0; l < L; ++l) {
    gates_l.push_back(gates[l]);
    cells_l.push_back(cells[l]);
    tanhc_l.push_back(tanhc[l]);
    hs_l.push_back(hs[l]);
  }

  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "fused_forward", [&] {
    using S = scalar_t;
    const int64_t padded = N + K - 1;
    std::vector<S> pw_all(static_cast<size_t>(B * padded));
    S* mem_p = mem.data_ptr<S>();
    S* raw_p = raw.data_ptr<S>();
    S* act_p = act.data_ptr<S>();
    S* rnorm_p = rnorm.data_ptr<S>();
    S* stages_p = stages.data_ptr<S>();
    S* reads_p = reads.data_ptr<S>();
    S* gates_p = gates.data_ptr<S>();
    S* cells_p = cells.data_ptr<S>();
    S* tanhc_p = tanhc.data_ptr<S>();
    S* hs_p = hs.data_ptr<S>();
    const S* reads0_p = reads0.data_ptr<S>();
    const S* w0_p = w0.data_ptr<S>();
    const int64_t stage = T * B * HN;  // one stage's size
    auto stage_at = [&](int64_t k, int64_t t) { return stages_p + k * stage + t * B * HN; };
    for (int64_t t = 0; t < T; ++t) {
      const S* below = t == 0 ? reads0_p : reads_p + (t - 1) * B * RM;
      int64_t bw = RM;
      for (int64_t l = 0; l < L; ++l) {
        const int64_t in = weights[l].size(0);
        Tensor u = inputs[l][t];  // (B, in) = [below | h_prev]
        S* up = u.data_ptr<S>();
        const S* h_prev = hs_p + (l * T + t - (t > 0 ? 1 : 0)) * B * C;  // read only if t > 0
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t k = 0; k < bw; ++k) up[b * in + k] = below[b * bw + k];
          if (lstm)
            for (int64_t k = 0; k < C; ++k) up[b * in + bw + k] = t == 0 ? S(0) : h_prev[b * C + k];
        }
        const Tensor& start = l == 0 ? x_proj[t] : bias_rows[l - 1];
        S* hp = hs_p + (l * T + t) * B * C;
        if (lstm) {
          at::addmm_out(pre, start, u, weights[l]);
          Tensor gt = gates_l[l][t];
          Tensor ifo = gt.narrow(1, 0, 3 * C), cand = gt.narrow(1, 3 * C, C);
          at::sigmoid_out(ifo, pre.narrow(1, 0, 3 * C));
          at::tanh_out(cand, pre.narrow(1, 3 * C, C));
          const S* gp = gates_p + (l * T + t) * B * G;
          const S* cprev = cells_p + (l * T + t - (t > 0 ? 1 : 0)) * B * C;  // read only if t > 0
          S* cp = cells_p + (l * T + t) * B * C;
          for (int64_t b = 0; b < B; ++b) {
            const S* gb = gp + b * 4 * C;
            for (int64_t j = 0; j < C; ++j)
              cp[b * C + j] = gb[C + j] * (t == 0 ? S(0) : cprev[b * C + j]) + gb[j] * gb[3 * C + j];
          }
          Tensor tc = tanhc_l[l][t];
          at::tanh_out(tc, cells_l[l][t]);
          const S* tcp = tanhc_p + (l * T + t) * B * C;
          for (int64_t b = 0; b < B; ++b) {
            const S* gb = gp + b * 4 * C;
            for (int64_t j = 0; j < C; ++j) hp[b * C + j] = gb[2 * C + j] * tcp[b * C + j];
          }
        } else {
          Tensor ht = hs_l[l][t];
          at::addmm_out(ht, start, u, weights[l]);
          ht.tanh_();
        }
        below = hp;
        bw = C;
      }
      Tensor raw_t = raw[t];
      at::addmm_out(raw_t, head_b_rows, hs_l[L - 1][t], head_wt);
      const S* rawp = raw_p + t * B * P;
      S* actp = act_p + t * B * P;
      const S* memp = mem_p + t * B * M * N;
      S* memo = mem_p + (t + 1) * B * M * N;
      const S* wprev = t == 0 ? w0_p : stage_at(4, t - 1);
      S* rn = rnorm_p + t * B * N;
      S* cs = stage_at(0, t);
      S* wc = stage_at(1, t);
      S* wg = stage_at(2, t);
      S* ws = stage_at(3, t);
      S* w = stage_at(4, t);
      S* lws = stage_at(5, t);
      S* rd = reads_p + t * B * RM;
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        FlushDenormals flush_worker;  // worker threads too
        for (int64_t b = b0; b < b1; ++b) {
          heads_forward_content<S>(d, rawp + b * P, actp + b * P, memp + b * N * M, rn + b * N,
                                   cs + b * HN, wc + b * HN);
          heads_forward_shift<S>(d, actp + b * P, wc + b * HN, wprev + b * HN, wg + b * HN,
                                 ws + b * HN, lws + b * HN, w + b * HN,
                                 pw_all.data() + b * padded);
          heads_forward_memory<S>(d, actp + b * P, memp + b * N * M, w + b * HN, rd + b * RM,
                                  memo + b * N * M);
        }
      });
    }
  });
  Tensor h_seq = hs[L - 1];
  std::vector<Tensor> out{h_seq, reads, mem, raw, act, rnorm, stages, gates, cells, tanhc, hs};
  for (auto& u : inputs) out.push_back(u);
  return out;
}

// Backward of fused_forward. Returns grads of {x_proj, weights..., biases..., head_wt, head_b,
// mem0, reads0, w0} in that order (L weights, L - 1 biases). Per step it carries the
// grads of the memory, the weightings, the read vectors and the controller state back one step;
// the weight matrices' grads are one matrix product each at the end, over all steps at once.
std::vector<Tensor> fused_backward(Tensor dh_seq, Tensor dreads_seq, Tensor x_proj,
                                   std::vector<Tensor> weights, Tensor head_wt, Tensor w0,
                                   Tensor mem,
                                   Tensor raw, Tensor act, Tensor rnorm, Tensor stages,
                                   Tensor gates, Tensor cells, Tensor tanhc, Tensor hs,
                                   std::vector<Tensor> inputs, int64_t R, int64_t W, int64_t K,
                                   bool lstm, double clip, double gamma_max) {
  FlushDenormals flush;
  const int64_t L = static_cast<int64_t>(weights.size());
  const int64_t C = head_wt.size(0);
  Dims d = make_dims(x_proj, mem.size(3), mem.size(2), R, W, K, clip, gamma_max);
  auto opts = x_proj.options();
  const int64_t T = d.T, B = d.B, N = d.N, M = d.M, H = d.H, RM = R * M, P = d.P;
  const int64_t G = lstm ? 4 * C : C;
  const int64_t HN = H * N;

  Tensor dx = torch::empty_like(x_proj);  // = layer 0's pre-activation grads
  std::vector<Tensor> dpre_all{dx};       // per layer (T, B, G)
  for (int64_t l = 1; l < L; ++l) dpre_all.push_back(torch::empty({T, B, G}, opts));
  std::vector<Tensor> du;                 // per layer (B, input): grad of [below | h_prev]
  for (int64_t l = 0; l < L; ++l) du.push_back(torch::zeros({B, weights[l].size(0)}, opts));
  std::vector<Tensor> weights_t;
  for (auto& w : weights) weights_t.push_back(w.t());
  Tensor draw_all = torch::empty({T, B, P}, opts);
  Tensor dmem = torch::zeros({B, M, N}, opts);       // grad of the memory after step t
  Tensor dmem_prev = torch::empty({B, M, N}, opts);  // grad of the memory before it (both (M, N))
  Tensor dw = torch::zeros({B, H, N}, opts);         // grad of step t's weightings
  Tensor dreads_t = torch::empty({B, RM}, opts);
  Tensor dh = torch::empty({B, C}, opts);            // grad of the top layer's output
  std::vector<Tensor> dc_rec;
  for (int64_t l = 0; l < L; ++l) dc_rec.push_back(torch::zeros({B, C}, opts));
  Tensor head_w = head_wt.t();
  const int64_t scratch_size = d.P + 7 * N + 2 * (N + K - 1);

  AT_DISPATCH_FLOATING_TYPES(x_proj.scalar_type(), "fused_backward", [&] {
    using S = scalar_t;
    std::vector<S> scratch_all(static_cast<size_t>(B * scratch_size));
    const S* mem_p = mem.data_ptr<S>();
    const S* raw_p = raw.data_ptr<S>();
    const S* act_p = act.data_ptr<S>();
    const S* rnorm_p = rnorm.data_ptr<S>();
    const S* stages_p = stages.data_ptr<S>();
    const S* gates_p = gates.data_ptr<S>();
    const S* cells_p = cells.data_ptr<S>();
    const S* tanhc_p = tanhc.data_ptr<S>();
    const S* hs_p = hs.data_ptr<S>();
    const S* w0_p = w0.data_ptr<S>();
    const S* dreads_seq_p = dreads_seq.data_ptr<S>();
    S* draw_p = draw_all.data_ptr<S>();
    S* dreads_p = dreads_t.data_ptr<S>();
    S* dw_p = dw.data_ptr<S>();
    S* dh_p = dh.data_ptr<S>();
    const int64_t stage = T * B * HN;
    auto stage_at = [&](int64_t k, int64_t t) { return stages_p + k * stage + t * B * HN; };
    for (int64_t t = T - 1; t >= 0; --t) {
      // Grad of this step's read vectors: the output's, plus the controller's at step t + 1.
      const S* du0 = du[0].data_ptr<S>();
      const int64_t in0 = weights[0].size(0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < RM; ++k)
          dreads_p[b * RM + k] = dreads_seq_p[(t * B + b) * RM + k] + du0[b * in0 + k];
      const S* rawp = raw_p + t * B * P;
      const S* actp = act_p + t * B * P;
      const S* memp = mem_p + t * B * M * N;
      const S* dmn = dmem.data_ptr<S>();
      S* dmp = dmem_prev.data_ptr<S>();
      const S* wprev = t == 0 ? w0_p : stage_at(4, t - 1);
      const S* rn = rnorm_p + t * B * N;
      const S* cs = stage_at(0, t);
      const S* wc = stage_at(1, t);
      const S* wg = stage_at(2, t);
      const S* ws = stage_at(3, t);
      const S* w = stage_at(4, t);
      const S* lws = stage_at(5, t);
      S* drawp = draw_p + t * B * P;
      S* scr = scratch_all.data();
      at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        FlushDenormals flush_worker;  // worker threads too
        for (int64_t b = b0; b < b1; ++b) {
          heads_backward<S>(d, rawp + b * P, actp + b * P, memp + b * N * M, dmn + b * N * M,
                            dmp + b * N * M, wprev + b * HN, rn + b * N, cs + b * HN,
                            wc + b * HN, wg + b * HN, ws + b * HN, lws + b * HN, w + b * HN,
                            dreads_p + b * RM, dw_p + b * HN, drawp + b * P,
                            scr + b * scratch_size);
        }
      });
      std::swap(dmem, dmem_prev);
      // The top layer's output: from the logits (dh_seq) and from the heads (raw = h @ head_wt).
      at::addmm_out(dh, dh_seq[t], draw_all[t], head_w);
      // Controller, top layer down. dh_p holds the grad of layer l's output at step t, apart
      // from the recurrent part, which is in du[l] (from step t + 1).
      for (int64_t l = L - 1; l >= 0; --l) {
        const int64_t in = weights[l].size(0);
        const int64_t bw = l == 0 ? RM : C;
        S* dul = du[l].data_ptr<S>();
        S* dp = dpre_all[l].data_ptr<S>() + t * B * G;
        if (lstm) {
          const S* gp = gates_p + (l * T + t) * B * G;
          const S* tcp = tanhc_p + (l * T + t) * B * C;
          const S* cprev = cells_p + (l * T + t - (t > 0 ? 1 : 0)) * B * C;  // c_{t-1}
          S* dcp = dc_rec[l].data_ptr<S>();
          for (int64_t b = 0; b < B; ++b) {
            const int64_t o = b * 4 * C;
            for (int64_t j = 0; j < C; ++j) {
              const S i_ = gp[o + j], f_ = gp[o + C + j], o_ = gp[o + 2 * C + j],
                      g_ = gp[o + 3 * C + j];
              const S tc = tcp[b * C + j];
              const S dhv = dh_p[b * C + j] + dul[b * in + bw + j];
              const S dc = dcp[b * C + j] + dhv * o_ * (S(1) - tc * tc);
              dp[o + j] = dc * g_ * i_ * (S(1) - i_);
              dp[o + C + j] = t == 0 ? S(0) : dc * cprev[b * C + j] * f_ * (S(1) - f_);
              dp[o + 2 * C + j] = dhv * tc * o_ * (S(1) - o_);
              dp[o + 3 * C + j] = dc * i_ * (S(1) - g_ * g_);
              dcp[b * C + j] = dc * f_;
            }
          }
        } else {
          const S* hp = hs_p + (l * T + t) * B * C;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < C; ++j)
              dp[b * C + j] = dh_p[b * C + j] * (S(1) - hp[b * C + j] * hp[b * C + j]);
        }
        Tensor dpre_t = dpre_all[l][t];
        at::mm_out(du[l], dpre_t, weights_t[l]);  // (B, input)
        if (l > 0)
          for (int64_t b = 0; b < B; ++b)
            for (int64_t j = 0; j < C; ++j) dh_p[b * C + j] = dul[b * in + j];
      }
    }
  });
  std::vector<Tensor> out{dx};
  // Weight grads over all steps at once: inputs (T*B, input)^T @ dpre (T*B, G).
  for (int64_t l = 0; l < L; ++l)
    out.push_back(at::mm(inputs[l].view({T * B, -1}).t(), dpre_all[l].view({T * B, G})));
  for (int64_t l = 1; l < L; ++l) out.push_back(dpre_all[l].sum(at::IntArrayRef{0, 1}));
  out.push_back(at::mm(hs[L - 1].view({T * B, C}).t(), draw_all.view({T * B, P})));
  out.push_back(draw_all.sum(at::IntArrayRef{0, 1}));
  out.push_back(dmem.transpose(1, 2).contiguous());
  out.push_back(du[0].narrow(1, 0, RM).contiguous());
  out.push_back(dw);
  return out;
}

// The float32 exp, log and tanh above, element-wise over a contiguous float32 tensor, for the
// tests: returns {exp(x), log(x), tanh(x)} (log only meaningful for x >= FLT_MIN).
std::vector<Tensor> vector_math(Tensor x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(), "a contiguous float32 tensor");
  Tensor e = torch::empty_like(x), l = torch::empty_like(x), t = torch::empty_like(x);
  const float* xp = x.data_ptr<float>();
  float *ep = e.data_ptr<float>(), *lp = l.data_ptr<float>(), *tp = t.data_ptr<float>();
  FlushDenormals flush;
  const int64_t n = x.numel();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    ep[i] = fast_exp(xp[i]);
    lp[i] = fast_log(xp[i]);
    tp[i] = fast_tanh(xp[i]);
  }
  return {e, l, t};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &fused_forward, "NTM unroll, forward");
  m.def("backward", &fused_backward, "NTM unroll, backward");
  m.def("vector_math", &vector_math, "the kernel's float32 exp, log and tanh (for tests)");
}

/*
 * The gated junction of SkipResNet / DenseResNet in one pass forward and one
 * pass backward, on contiguous NCHW float / double maps on the CPU:
 *
 *     out = act(A[p] * c + B[p] + sum_k W[k][p] * x_k)      (per plane p)
 *
 * p = n * C + channel indexes the (sample, channel) planes of H * W values;
 * act is ReLU or the identity. The forward pass also gives the sum of each
 * output plane (the next block's global descriptor, without reading the
 * map again). With A = sigmoid(g0) * gamma / sigma and
 * B = sigmoid(g0) * (beta - gamma * mu / sigma) this is BatchNorm, the gate
 * and the activation at once (Takeda et al., "Skip-connected ResNets",
 * 2022; Ioffe and Szegedy, "Batch Normalization", 2015). The backward pass
 * takes dz = act'(out) * dout and returns dc = A * dz, dx_k = W_k * dz and the
 * per-plane sums S0 = sum dz, S1 = sum dz * c, S_k = sum dz * x_k (the
 * gradients of B, A and W_k), accumulated in double. A dx_k can be added
 * into a gradient buffer instead (bit k of add_mask): the buffer that
 * collects an inbound's gradient from every junction that reads it, so that
 * no junction writes a fresh map that autograd then adds up. mg_plane_add
 * is that buffer's last step: out = a + g + (alpha[p] * c + beta[p]) (the
 * rest of the map's gradient and that of its plane means and variances).
 *
 * No Python, no torch headers: the Python side (mmgate/ops/junction.py)
 * calls these through ctypes on ranges of planes, one range per thread.
 * Built by setup.py as an optional extension; the eager PyTorch path is used
 * (with a logged warning) when it is missing.
 */
#include <stddef.h>
#include <stdint.h>

#define LANES 16
#define BLOCK 1024
/* the most inbounds a junction reads (the Python side checks) */
#define MAX_K 64
/* x86-64: an AVX2 copy of each kernel next to the baseline one, picked at
 * load time (GCC function multi-versioning) */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MG_TARGETS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MG_TARGETS
#endif

/* Python needs a module init to accept the file as an extension module;
 * only ctypes uses it. */
#include <Python.h>
static struct PyModuleDef mg_module = {PyModuleDef_HEAD_INIT,
                                       "_fused_junction", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__fused_junction(void) {
  return PyModule_Create(&mg_module);
}

int mg_junction_abi_version(void) { return 6; }

#define DEFINE_KERNELS(T, SUFFIX)                                             \
  /* sum_i g_i (v == NULL) or sum_i g_i * v_i over n <= BLOCK values:    \
   * LANES accumulators of T (vectorised), their total in double */        \
  static inline __attribute__((always_inline)) double mg_dot_##SUFFIX(       \
      const T *restrict g, const T *restrict v, int64_t n) {                  \
    T acc[LANES] = {0};                                                       \
    int64_t i = 0;                                                            \
    double s = 0;                                                             \
    if (v) {                                                                  \
      for (; i + LANES <= n; i += LANES)                                      \
        for (int j = 0; j < LANES; ++j) acc[j] += g[i + j] * v[i + j];        \
      for (; i < n; ++i) s += (double)g[i] * v[i];                            \
    } else {                                                                  \
      for (; i + LANES <= n; i += LANES)                                      \
        for (int j = 0; j < LANES; ++j) acc[j] += g[i + j];                   \
      for (; i < n; ++i) s += g[i];                                           \
    }                                                                         \
    for (int j = 0; j < LANES; ++j) s += acc[j];                              \
    return s;                                                                 \
  }                                                                           \
                                                                              \
  MG_TARGETS void mg_junction_fwd_##SUFFIX(                                   \
      int64_t p0, int64_t p1, int64_t P, int64_t hw, int64_t K, int relu,     \
      const T *c, const T *A, const T *B, const T *const *xs, const T *W,     \
      T *out, double *S) {                                                    \
    for (int64_t p = p0; p < p1; ++p) {                                       \
      const T a = A[p], b = B[p];                                             \
      const T *cp = c + p * hw;                                               \
      T *op = out + p * hw;                                                   \
      /* up to three inbounds in the same loop, more in further passes */    \
      const T w0 = K > 0 ? W[p] : 0, w1 = K > 1 ? W[P + p] : 0;               \
      const T w2 = K > 2 ? W[2 * P + p] : 0;                                  \
      const T *x0 = K > 0 ? xs[0] + p * hw : NULL;                            \
      const T *x1 = K > 1 ? xs[1] + p * hw : NULL;                            \
      const T *x2 = K > 2 ? xs[2] + p * hw : NULL;                            \
      if (K == 1)                                                             \
        for (int64_t i = 0; i < hw; ++i) op[i] = a * cp[i] + b + w0 * x0[i];  \
      else if (K == 2)                                                        \
        for (int64_t i = 0; i < hw; ++i)                                      \
          op[i] = a * cp[i] + b + w0 * x0[i] + w1 * x1[i];                    \
      else if (K >= 3)                                                        \
        for (int64_t i = 0; i < hw; ++i)                                      \
          op[i] = a * cp[i] + b + w0 * x0[i] + w1 * x1[i] + w2 * x2[i];       \
      else                                                                    \
        for (int64_t i = 0; i < hw; ++i) op[i] = a * cp[i] + b;               \
      for (int64_t k = 3; k < K; ++k) {                                       \
        const T w = W[k * P + p];                                             \
        const T *xp = xs[k] + p * hw;                                         \
        for (int64_t i = 0; i < hw; ++i) op[i] += w * xp[i];                  \
      }                                                                       \
      if (relu)                                                               \
        for (int64_t i = 0; i < hw; ++i) op[i] = op[i] < 0 ? (T)0 : op[i];    \
      if (S) { /* the plane's sum, while it is in cache */                   \
        double s = 0;                                                         \
        for (int64_t i0 = 0; i0 < hw; i0 += BLOCK) {                          \
          const int64_t n = hw - i0 < BLOCK ? hw - i0 : BLOCK;                \
          s += mg_dot_##SUFFIX(op + i0, NULL, n);                             \
        }                                                                     \
        S[p] = s;                                                             \
      }                                                                       \
    }                                                                         \
  }                                                                           \
                                                                              \
  /* Each plane is walked in blocks of BLOCK values that stay in L1 while    \
   * every output is written. */                                             \
  MG_TARGETS void mg_junction_bwd_##SUFFIX(                                   \
      int64_t p0, int64_t p1, int64_t P, int64_t hw, int64_t K, int relu,     \
      uint64_t add_mask, const T *dout, const T *out, const T *c, const T *A, \
      const T *const *xs, const T *W, T *dc, T *const *dxs, double *S0,       \
      double *S1, double *Sk) {                                               \
    T g[BLOCK]; /* dz of one block of a plane */                              \
    for (int64_t p = p0; p < p1; ++p) {                                       \
      const int64_t base = p * hw;                                            \
      const T a = A[p];                                                       \
      double s0 = 0, s1 = 0;                                                  \
      double sk[MAX_K] = {0};                                                 \
      for (int64_t i0 = 0; i0 < hw; i0 += BLOCK) {                            \
        const int64_t n = hw - i0 < BLOCK ? hw - i0 : BLOCK;                  \
        const T *restrict dp = dout + base + i0;                              \
        if (relu) {                                                           \
          const T *restrict op = out + base + i0;                             \
          for (int64_t i = 0; i < n; ++i) g[i] = op[i] <= 0 ? (T)0 : dp[i];   \
        } else {                                                              \
          for (int64_t i = 0; i < n; ++i) g[i] = dp[i];                       \
        }                                                                     \
        if (S0) s0 += mg_dot_##SUFFIX(g, NULL, n);                            \
        if (S1) s1 += mg_dot_##SUFFIX(g, c + base + i0, n);                   \
        if (dc) {                                                             \
          T *restrict q = dc + base + i0;                                     \
          for (int64_t i = 0; i < n; ++i) q[i] = g[i] * a;                    \
        }                                                                     \
        for (int64_t k = 0; k < K; ++k) {                                     \
          if (Sk) sk[k] += mg_dot_##SUFFIX(g, xs[k] + base + i0, n);          \
          if (dxs[k]) {                                                       \
            const T w = W[k * P + p];                                         \
            T *restrict q = dxs[k] + base + i0;                               \
            if ((add_mask >> k) & 1)                                          \
              for (int64_t i = 0; i < n; ++i) q[i] += g[i] * w;               \
            else                                                              \
              for (int64_t i = 0; i < n; ++i) q[i] = g[i] * w;                \
          }                                                                   \
        }                                                                     \
      }                                                                       \
      if (S0) S0[p] = s0;                                                     \
      if (S1) S1[p] = s1;                                                     \
      if (Sk)                                                                 \
        for (int64_t k = 0; k < K; ++k) Sk[k * P + p] = sk[k];                \
    }                                                                         \
  }

#define DEFINE_MOMENTS(T, SUFFIX)                                             \
  /* Mean and (biased) variance of every plane, two passes over a plane     \
   * that stays in cache: sum c, then sum (c - mean)^2. */                   \
  MG_TARGETS void mg_plane_moments_##SUFFIX(int64_t p0, int64_t p1,         \
                                            int64_t hw, const T *c,          \
                                            T *mean, T *var) {               \
    for (int64_t p = p0; p < p1; ++p) {                                       \
      const T *cp = c + p * hw;                                               \
      double s = 0;                                                           \
      for (int64_t i0 = 0; i0 < hw; i0 += BLOCK)                              \
        s += mg_dot_##SUFFIX(cp + i0, NULL, hw - i0 < BLOCK ? hw - i0 : BLOCK); \
      const double m = s / (double)hw;                                        \
      mean[p] = (T)m;                                                         \
      if (!var) continue;                                                     \
      const T mt = (T)m;                                                      \
      double q = 0;                                                           \
      for (int64_t i0 = 0; i0 < hw; i0 += BLOCK) {                            \
        const int64_t n = hw - i0 < BLOCK ? hw - i0 : BLOCK;                  \
        T acc[LANES] = {0};                                                   \
        int64_t i = 0;                                                        \
        for (; i + LANES <= n; i += LANES)                                    \
          for (int j = 0; j < LANES; ++j) {                                   \
            const T d = cp[i0 + i + j] - mt;                                  \
            acc[j] += d * d;                                                  \
          }                                                                   \
        for (; i < n; ++i) {                                                  \
          const double d = (double)cp[i0 + i] - m;                            \
          q += d * d;                                                         \
        }                                                                     \
        for (int j = 0; j < LANES; ++j) q += acc[j];                          \
      }                                                                       \
      var[p] = (T)(q / (double)hw);                                           \
    }                                                                         \
  }

#define DEFINE_PLANE_ADD(T, SUFFIX)                                           \
  /* out = a + g + (alpha[p] * c + beta[p]) per plane p; g, c (with alpha)  \
   * and beta may be NULL; out may be a (in place). */                      \
  MG_TARGETS void mg_plane_add_##SUFFIX(                                      \
      int64_t p0, int64_t p1, int64_t hw, T *out, const T *a, const T *g,     \
      const T *c, const T *alpha, const T *beta) {                            \
    for (int64_t p = p0; p < p1; ++p) {                                       \
      const T b = beta ? beta[p] : (T)0;                                      \
      const T *ap = a + p * hw;                                               \
      const T *gp = g ? g + p * hw : NULL;                                    \
      const T *cp = c ? c + p * hw : NULL;                                    \
      T *op = out + p * hw;                                                   \
      if (cp) {                                                               \
        const T al = alpha[p];                                                \
        if (gp)                                                               \
          for (int64_t i = 0; i < hw; ++i)                                    \
            op[i] = ap[i] + gp[i] + (b + al * cp[i]);                         \
        else                                                                  \
          for (int64_t i = 0; i < hw; ++i) op[i] = ap[i] + (b + al * cp[i]);  \
      } else if (gp) {                                                        \
        for (int64_t i = 0; i < hw; ++i) op[i] = ap[i] + gp[i] + b;           \
      } else {                                                                \
        for (int64_t i = 0; i < hw; ++i) op[i] = ap[i] + b;                   \
      }                                                                       \
    }                                                                         \
  }

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)
DEFINE_MOMENTS(float, f32)
DEFINE_MOMENTS(double, f64)
DEFINE_PLANE_ADD(float, f32)
DEFINE_PLANE_ADD(double, f64)


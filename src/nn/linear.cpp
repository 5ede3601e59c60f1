// nn::linear on the CPU without autograd (compiled with OpenMP, see CMakeLists.txt).
//
// - One input row (a token of KV-cached decoding) is a matrix-vector product: BLAS sgemm packs the whole
//   weight matrix for a single row and runs 3-9x slower than a matvec (measured with OpenBLAS, 2 cores).
// - More rows are split into a fixed number of equal parts -- row blocks when rows outnumber the
//   output columns, else column blocks -- one single-threaded BLAS call each, spread over the threads. The split
//   depends only on the shape, so every output element sees the same arithmetic whatever the thread count (OpenBLAS's
//   own threading rounds differently per split) and a seed gives the same image with
//   --threads 1 and 2; equal parts keep 2, 4 or 8 threads evenly loaded.
// With autograd recording, on other devices or dtypes, it is at::linear.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "nn/decode_kernels.hpp"
#include "nn/layers.hpp"
#include "nn/one_blas_thread.hpp"

namespace pictor::nn {

namespace {
constexpr int64_t kParts = 8;         // work items per product (a multiple of the usual thread counts)
constexpr int64_t kMinPartRows = 64;  // fewer rows per part than this: split the columns instead
constexpr int64_t kAlign = 16;        // column blocks a multiple of the BLAS kernels' width

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
}  // namespace

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  namespace dk = decode_kernels;
  if (!dk::applicable(x) || !dk::applicable(weight) || weight.dim() != 2 || (bias.defined() && !dk::applicable(bias)))
    return at::linear(x, weight, bias);
  const int64_t in = x.size(-1), N = weight.size(0), M = in ? x.numel() / in : 0;
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = N;
  if (M == 1) {
    at::Tensor y = dk::matvec(weight, x, bias);
    if (!y.defined()) {
      OneBlasThread one;
      const at::Tensor row = x.reshape({in});
      y = bias.defined() ? at::addmv(bias, weight, row) : at::mv(weight, row);
    }
    return y.view(shape);
  }
  if (M == 0 || in != weight.size(1)) return at::linear(x, weight, bias);
  const at::Tensor x2 = x.reshape({M, in});
  at::Tensor out = at::empty({M, N}, x.options());
  // Each part re-packs the operand it shares with the others (BLAS copies it into its blocked layout):
  // row parts share the weight (K x N), column parts the input (M x K), so split the larger dimension.
  const bool by_rows = M >= kParts * kMinPartRows && M >= N;
  const int64_t step = by_rows ? ceil_div(M, kParts) : ceil_div(ceil_div(N, kParts), kAlign) * kAlign;
  const int64_t parts = ceil_div(by_rows ? M : N, step);
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    c10::InferenceMode guard(inference);  // thread-local: the worker threads need it too
    OneBlasThread one;
    for (int64_t part = begin; part < end; ++part) {
      const int64_t start = part * step, len = std::min(step, (by_rows ? M : N) - start);
      if (by_rows) {
        at::Tensor o = out.narrow(0, start, len);
        if (bias.defined())
          at::addmm_out(o, bias, x2.narrow(0, start, len), weight.t());
        else
          at::mm_out(o, x2.narrow(0, start, len), weight.t());
      } else {
        at::Tensor o = out.narrow(1, start, len);
        const at::Tensor wt = weight.narrow(0, start, len).t();
        if (bias.defined())
          at::addmm_out(o, bias.narrow(0, start, len), x2, wt);
        else
          at::mm_out(o, x2, wt);
      }
    }
  });
  return out.view(shape);
}

}  // namespace pictor::nn

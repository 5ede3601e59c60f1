// nn::linear on the CPU without autograd (compiled with OpenMP, see CMakeLists.txt).
//
// - One input row (a token of KV-cached decoding) is a matrix-vector product: BLAS sgemm packs the whole
//   weight matrix for a single row and runs 3-9x slower than a matvec (measured with OpenBLAS, 2 cores).
// - More rows are split into a fixed number of equal parts -- row blocks when rows outnumber the
//   output columns, else column blocks -- one single-threaded BLAS call each, spread over the threads. The split
//   depends only on the shape, so every output element sees the same arithmetic whatever the thread count (OpenBLAS's
//   own threading rounds differently per split) and a seed gives the same image with
//   --threads 1 and 2; equal parts keep 2, 4 or 8 threads evenly loaded.
// - An activation asked for with the product (nn::linear(x, w, b, then)) runs on each part as soon as
//   BLAS has written it, on the same thread, while the part is in cache.
// With autograd recording, on other devices or dtypes, it is at::linear.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "nn/decode_kernels.hpp"
#include "nn/layers.hpp"
#include "nn/linear_blocks.hpp"
#include "nn/one_blas_thread.hpp"
#include "nn/parallel_parts.hpp"

namespace pictor::nn {

namespace {
constexpr int64_t kParts = 8;         // work items per product (a multiple of the usual thread counts)
constexpr int64_t kMinPartRows = 64;  // fewer rows per part than this: split the columns instead
constexpr int64_t kAlign = 16;        // column blocks a multiple of the BLAS kernels' width

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// `then`, if given, is applied to each block of the output right after its product.
at::Tensor linear_then(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, const Activation* then) {
  namespace dk = decode_kernels;
  auto finish = [&](at::Tensor y) { return then ? activate_(y, *then) : y; };
  if (!dk::applicable(x) || !dk::applicable(weight) || weight.dim() != 2 || (bias.defined() && !dk::applicable(bias)))
    return then ? activate(at::linear(x, weight, bias), *then) : at::linear(x, weight, bias);
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
    return finish(y.view(shape));
  }
  if (M == 0 || in != weight.size(1)) return finish(at::linear(x, weight, bias));
  const at::Tensor x2 = x.reshape({M, in});
  at::Tensor out = at::empty({M, N}, x.options());
  // Each part re-packs the operand it shares with the others (BLAS copies it into its blocked layout):
  // row parts share the weight (K x N), column parts the input (M x K), so split the larger dimension.
  if (M >= kParts * kMinPartRows && M >= N) {
    const int64_t step = ceil_div(M, kParts);
    parallel_parts(ceil_div(M, step), [&](int64_t part) {
      OneBlasThread one;
      const int64_t start = part * step, len = std::min(step, M - start);
      at::Tensor o = out.narrow(0, start, len);
      if (bias.defined())
        at::addmm_out(o, bias, x2.narrow(0, start, len), weight.t());
      else
        at::mm_out(o, x2.narrow(0, start, len), weight.t());
      if (then) activate_(o, *then);  // single-threaded here, on a block the product just wrote
    });
  } else {
    column_block_products(
        x2, N, [&](int64_t start, int64_t len) { return weight.narrow(0, start, len); }, bias, then, out);
  }
  return out.view(shape);
}
}  // namespace

void column_block_products(const at::Tensor& x2, int64_t N, const WeightRows& rows, const at::Tensor& bias,
                           const Activation* then, at::Tensor& out) {
  const int64_t step = ceil_div(ceil_div(N, kParts), kAlign) * kAlign;
  parallel_parts(ceil_div(N, step), [&](int64_t part) {
    OneBlasThread one;
    const int64_t start = part * step, len = std::min(step, N - start);
    at::Tensor o = out.narrow(1, start, len);
    const at::Tensor wt = rows(start, len).t();
    if (bias.defined())
      at::addmm_out(o, bias.narrow(0, start, len), x2, wt);
    else
      at::mm_out(o, x2, wt);
    if (then) activate_(o, *then);  // single-threaded here, on a block the product just wrote
  });
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return linear_then(x, weight, bias, nullptr);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, Activation then) {
  return linear_then(x, weight, bias, &then);
}

}  // namespace pictor::nn

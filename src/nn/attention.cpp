#include "nn/attention.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "nn/decode_kernels.hpp"
#include "nn/flop_counter.hpp"

namespace pictor::nn {

namespace {
std::atomic<int64_t> g_chunk_bytes{64ll << 20};
constexpr int64_t kSmallQueryRows = 16;

// Scratch buffers reused by successive inference-mode calls on the same thread.
at::Tensor& scratch(int which) {
  thread_local at::Tensor buf[2];
  return buf[which];
}
at::Tensor scratch_view(int which, int64_t a, int64_t b, int64_t c, const at::TensorOptions& opt) {
  at::Tensor& s = scratch(which);
  const int64_t need = a * b * c;
  if (!s.defined() || s.numel() < need || s.device() != opt.device()) s = at::empty({need}, opt);
  return s.narrow(0, 0, need).view({a, b, c});
}
}  // namespace

void release_attention_scratch() {
  scratch(0) = at::Tensor();
  scratch(1) = at::Tensor();
}

void set_attention_chunk_bytes(int64_t bytes) {
  g_chunk_bytes = std::max<int64_t>(bytes, 1 << 16);
}
int64_t attention_chunk_bytes() {
  return g_chunk_bytes;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3), Tk = k.size(2);
  if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(D));
  const int64_t BH = B * H;
  if (FlopCounter::enabled()) FlopCounter::add(2.0 * double(BH) * double(Tq) * double(Tk) * double(D + v.size(3)));
  at::Tensor q3 = q.reshape({BH, Tq, D});
  at::Tensor kt = k.reshape({BH, Tk, D}).transpose(1, 2);
  at::Tensor v3 = v.reshape({BH, Tk, v.size(3)});
  at::Tensor m4;
  if (mask.defined()) m4 = mask.expand({B, H, Tq, Tk});
  const int64_t row_bytes = BH * Tk * static_cast<int64_t>(sizeof(float));
  const int64_t chunk = std::clamp<int64_t>(attention_chunk_bytes() / std::max<int64_t>(row_bytes, 1), 1, Tq);

  if (at::GradMode::is_enabled() && !c10::InferenceMode::is_enabled()) {
    std::vector<at::Tensor> outs;
    for (int64_t s = 0; s < Tq; s += chunk) {
      int64_t n = std::min(chunk, Tq - s);
      at::Tensor sc = at::bmm(q3.narrow(1, s, n), kt) * scale;
      if (m4.defined()) sc = sc + m4.narrow(2, s, n).reshape({BH, n, Tk});
      outs.push_back(at::bmm(at::softmax(sc, -1), v3));
    }
    return at::cat(outs, 1).view({B, H, Tq, v.size(3)});
  }

  // A few query rows against a cache (token-by-token decoding): one fused pass per row instead of
  // bmm/softmax/bmm dispatches that cost more than their arithmetic.
  if (Tq <= kSmallQueryRows) {
    at::Tensor fused = decode_kernels::small_query_attention(q, k, v, mask, scale);
    if (fused.defined()) return fused;
  }

  at::Tensor out = at::empty({BH, Tq, v.size(3)}, q.options());
  for (int64_t s = 0; s < Tq; s += chunk) {
    int64_t n = std::min(chunk, Tq - s);
    at::Tensor sc = scratch_view(0, BH, n, Tk, q.options());
    at::bmm_out(sc, q3.narrow(1, s, n), kt);
    sc.mul_(scale);
    if (m4.defined()) sc.add_(m4.narrow(2, s, n).reshape({BH, n, Tk}));
    at::Tensor pr = scratch_view(1, BH, n, Tk, q.options());
    at::_softmax_out(pr, sc, -1, false);
    if (n == Tq) {
      at::bmm_out(out, pr, v3);
    } else {
      at::Tensor o = out.narrow(1, s, n);
      o.copy_(at::bmm(pr, v3));
    }
  }
  return out.view({B, H, Tq, v.size(3)});
}

}  // namespace pictor::nn

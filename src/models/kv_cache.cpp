#include "models/kv_cache.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.hpp"

namespace pictor::models {

std::pair<at::Tensor, at::Tensor> KVCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  if (layer < 0) throw Error("KV cache: negative layer index");
  if (layer >= num_layers()) layers_.resize(static_cast<size_t>(layer + 1));
  Layer& L = layers_[static_cast<size_t>(layer)];
  const int64_t t = k.size(2), needed = L.length + t;
  if (L.length > 0 && (k.size(0) != L.k.size(0) || k.size(1) != L.k.size(1) || k.size(3) != L.k.size(3)))
    throw Error("KV cache: layer " + std::to_string(layer) +
                " holds a different batch or head shape than the new keys");

  if ((k.requires_grad() || v.requires_grad()) && at::GradMode::is_enabled()) {
    L.k = L.length ? at::cat({L.k.narrow(2, 0, L.length), k}, 2) : k;
    L.v = L.length ? at::cat({L.v.narrow(2, 0, L.length), v}, 2) : v;
    L.length = needed;
    return {L.k, L.v};
  }
  const int64_t capacity = L.length ? L.k.size(2) : 0;
  if (needed > capacity || L.k.requires_grad()) {
    int64_t want = std::max({needed, capacity + capacity / 2, reserve_});
    want = (want + chunk_ - 1) / chunk_ * chunk_;
    at::Tensor nk = at::empty({k.size(0), k.size(1), want, k.size(3)}, k.options().requires_grad(false));
    at::Tensor nv = at::empty({v.size(0), v.size(1), want, v.size(3)}, v.options().requires_grad(false));
    if (L.length) {
      nk.narrow(2, 0, L.length).copy_(L.k.narrow(2, 0, L.length));
      nv.narrow(2, 0, L.length).copy_(L.v.narrow(2, 0, L.length));
    }
    L.k = nk;
    L.v = nv;
  }
  L.k.narrow(2, L.length, t).copy_(k);
  L.v.narrow(2, L.length, t).copy_(v);
  L.length = needed;
  return {L.k.narrow(2, 0, L.length), L.v.narrow(2, 0, L.length)};
}

at::Tensor KVCache::keys(int64_t layer) const {
  if (layer < 0 || layer >= num_layers()) return {};
  const Layer& L = layers_[static_cast<size_t>(layer)];
  return L.length ? L.k.narrow(2, 0, L.length) : at::Tensor();
}

at::Tensor KVCache::values(int64_t layer) const {
  if (layer < 0 || layer >= num_layers()) return {};
  const Layer& L = layers_[static_cast<size_t>(layer)];
  return L.length ? L.v.narrow(2, 0, L.length) : at::Tensor();
}

}  // namespace pictor::models

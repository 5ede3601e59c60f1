#pragma once
// Key/value cache of a decoder: per layer, the keys (after rotary embedding) and values of every token
// seen so far, [B, kv_heads, length, head_dim]. Storage grows geometrically in whole chunks, so
// decoding n tokens copies O(n) elements in total instead of re-concatenating the cache every step.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace pictor::models {

class KVCache {
 public:
  // `chunk`: capacity granularity in tokens.
  explicit KVCache(int64_t chunk = 256) : chunk_(chunk > 0 ? chunk : 1) {}

  // Tokens cached so far (those of layer 0, which every forward pass appends to first).
  int64_t length() const { return layers_.empty() ? 0 : layers_.front().length; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  // Appends k, v [B, kv_heads, t, head_dim] to `layer` and returns views of all its keys and values.
  // Under autograd (inputs requiring grad) the cache concatenates instead, so gradients flow.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  // Views of a layer's cached keys / values (undefined for a layer never appended to).
  at::Tensor keys(int64_t layer) const;
  at::Tensor values(int64_t layer) const;
  // Ensures room for `tokens` in total at the next allocation (e.g. prompt + max_new_tokens).
  void reserve(int64_t tokens) { reserve_ = tokens; }
  void clear() { layers_.clear(); }

 private:
  struct Layer {
    at::Tensor k, v;  // storage [B, kv_heads, capacity, head_dim]
    int64_t length = 0;
  };
  int64_t chunk_;
  int64_t reserve_ = 0;
  std::vector<Layer> layers_;
};

}  // namespace pictor::models

#include "models/tiled_blend.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.hpp"

namespace pictor::models {

std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t overlap) {
  if (tile <= 0) throw Error("tiling: tile size must be positive (got " + std::to_string(tile) + ")");
  if (overlap < 0 || overlap >= tile)
    throw Error("tiling: overlap must be in [0, tile) (got " + std::to_string(overlap) + " for tile " +
                std::to_string(tile) + ")");
  if (length <= tile) return {0};
  // Fewest tiles whose spacing keeps every overlap >= `overlap`, then spaced evenly so all overlaps
  // are (nearly) equal: wider overlaps blend more smoothly than a short last tile would.
  const int64_t n = (length - overlap + (tile - overlap) - 1) / (tile - overlap);
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < n; ++i) starts.push_back((i * (length - tile) + (n - 1) / 2) / (n - 1));
  return starts;
}

namespace {

// Blend weight of each output pixel of one tile along one axis: a linear ramp across the overlap with
// the previous and the next tile, 1 elsewhere. Ramps of neighbours sum to ~1 over a shared overlap;
// the exact normalisation is done by dividing by the summed weights.
at::Tensor axis_weights(const std::vector<int64_t>& starts, size_t k, int64_t tile_len, int64_t unit,
                        const at::TensorOptions& opt) {
  const int64_t len = tile_len * unit;
  at::Tensor pos = at::arange(len, opt) + 0.5;
  at::Tensor w = at::ones({len}, opt);
  if (k > 0) {
    const double left = static_cast<double>((starts[k - 1] + tile_len - starts[k]) * unit);
    if (left > 0) w = at::minimum(w, pos / left);
  }
  if (k + 1 < starts.size()) {
    const double right = static_cast<double>((starts[k] + tile_len - starts[k + 1]) * unit);
    if (right > 0) w = at::minimum(w, (static_cast<double>(len) - pos) / right);
  }
  return w;
}

}  // namespace

at::Tensor tiled_apply(const at::Tensor& x, const TileGrid& grid,
                       const std::function<at::Tensor(const at::Tensor&)>& fn) {
  const int64_t H = x.size(2), W = x.size(3);
  if (H % grid.in_unit || W % grid.in_unit)
    throw Error("tiling: input size " + std::to_string(H) + "x" + std::to_string(W) + " is not a multiple of " +
                std::to_string(grid.in_unit));
  const int64_t gh = H / grid.in_unit, gw = W / grid.in_unit;
  const int64_t th = std::min(grid.tile, gh), tw = std::min(grid.tile, gw);
  const auto ys = tile_starts(gh, th, std::min(grid.overlap, th - 1));
  const auto xs = tile_starts(gw, tw, std::min(grid.overlap, tw - 1));
  const int64_t u = grid.out_unit;
  const auto wopt = x.options().dtype(at::kFloat);

  at::Tensor out, wsum_y = at::zeros({gh * u}, wopt), wsum_x = at::zeros({gw * u}, wopt);
  for (size_t i = 0; i < ys.size(); ++i) wsum_y.narrow(0, ys[i] * u, th * u).add_(axis_weights(ys, i, th, u, wopt));
  for (size_t j = 0; j < xs.size(); ++j) wsum_x.narrow(0, xs[j] * u, tw * u).add_(axis_weights(xs, j, tw, u, wopt));

  for (size_t i = 0; i < ys.size(); ++i) {
    const at::Tensor wy = axis_weights(ys, i, th, u, wopt).view({1, 1, -1, 1});
    for (size_t j = 0; j < xs.size(); ++j) {
      at::Tensor tile_in =
          x.narrow(2, ys[i] * grid.in_unit, th * grid.in_unit).narrow(3, xs[j] * grid.in_unit, tw * grid.in_unit);
      at::Tensor tile_out = fn(tile_in);
      if (tile_out.size(2) != th * u || tile_out.size(3) != tw * u)
        throw Error("tiling: a tile mapped to an unexpected size");
      if (!out.defined()) out = at::zeros({x.size(0), tile_out.size(1), gh * u, gw * u}, tile_out.options());
      const at::Tensor wx = axis_weights(xs, j, tw, u, wopt).view({1, 1, 1, -1});
      out.narrow(2, ys[i] * u, th * u).narrow(3, xs[j] * u, tw * u).add_(tile_out * (wy * wx));
    }
  }
  return out / (wsum_y.view({1, 1, -1, 1}) * wsum_x.view({1, 1, 1, -1}));
}

void TilingPolicy::set(bool enabled, int64_t tile, int64_t overlap, const std::string& owner) {
  if (tile < 1 || overlap < 0 || overlap >= tile)
    throw Error(owner + "::set_tiling: need tile_latent >= 1 and 0 <= overlap_latent < tile_latent (got " +
                std::to_string(tile) + ", " + std::to_string(overlap) + ")");
  mode = enabled ? Mode::On : Mode::Off;
  tile_latent = tile;
  overlap_latent = overlap;
}

}  // namespace pictor::models

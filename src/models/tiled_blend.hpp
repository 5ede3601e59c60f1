#pragma once
// Runs a spatial map (an autoencoder's decoder or encoder) on overlapping tiles and blends the tile
// outputs linearly across each overlap, so peak memory depends on the tile size, not the image size.
//
// The result differs slightly from running the map on the whole input: GroupNorm statistics and the
// mid-block attention only see one tile. The linear cross-fade hides the seams; away from the overlaps
// the difference is the (small) change in those global statistics.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pictor::models {

// Tile start offsets along one axis of `length` units: tiles of `tile` units overlapping by at least
// `overlap`, spread evenly with the first at 0 and the last ending at `length`. One tile at 0 when
// length <= tile.
std::vector<int64_t> tile_starts(int64_t length, int64_t tile, int64_t overlap);

struct TileGrid {
  int64_t tile = 64;     // tile size in grid units
  int64_t overlap = 8;   // minimum overlap in grid units
  int64_t in_unit = 1;   // input pixels per grid unit (8 when tiling an encoder's image input)
  int64_t out_unit = 8;  // output pixels per grid unit (8 when tiling a decoder's image output)
};

// x [B, C, H, W] with H, W multiples of grid.in_unit; fn maps a [B, C, h, w] tile to
// [B, C', h / in_unit * out_unit, w / in_unit * out_unit].
at::Tensor tiled_apply(const at::Tensor& x, const TileGrid& grid,
                       const std::function<at::Tensor(const at::Tensor&)>& fn);

// When an autoencoder tiles: forced on/off, or automatically above a pixel count. Shared by the KL VAE
// and TAESD so both expose the same set_tiling / set_auto_tiling / uses_tiling behaviour.
struct TilingPolicy {
  enum class Mode { Auto, On, Off };
  Mode mode = Mode::Auto;
  int64_t tile_latent = 64, overlap_latent = 8, max_untiled_pixels;
  explicit TilingPolicy(int64_t max_untiled) : max_untiled_pixels(max_untiled) {}
  // Throws pictor::Error naming `owner` for a tile size / overlap that cannot work.
  void set(bool enabled, int64_t tile, int64_t overlap, const std::string& owner);
  void set_auto(int64_t max_untiled) { mode = Mode::Auto, max_untiled_pixels = max_untiled; }
  bool applies(int64_t height_px, int64_t width_px) const {
    return mode == Mode::On || (mode == Mode::Auto && height_px * width_px > max_untiled_pixels);
  }
};

}  // namespace pictor::models

// 8-bit resampling with the same arithmetic as PIL's Resample.c, so that init images and masks resized
// here match what diffusers' VaeImageProcessor (PIL, LANCZOS by default) gives the model:
//  - separable: a horizontal pass into an 8-bit intermediate, then a vertical pass;
//  - when downscaling, the filter support grows by the scale factor (antialiasing);
//  - weights are normalised per output pixel, then turned into 22-bit fixed point and accumulated in
//    integers with rounding, and the result is clipped to 0..255.
#include <cmath>
#include <cstring>
#include <numbers>

#include "core/error.hpp"
#include "formats/image.hpp"

namespace pictor {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double (*fn)(double);
  double support;
};

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos(double x) {
  return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

Filter filter_for(ResizeFilter f) {
  switch (f) {
    case ResizeFilter::Bilinear: return {bilinear, 1.0};
    case ResizeFilter::Bicubic: return {bicubic, 2.0};
    case ResizeFilter::Lanczos: break;
  }
  return {lanczos, 3.0};
}

// For each output position: the first input index, the tap count and `ksize` fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coeffs precompute(int in_size, int out_size, const Filter& filter) {
  const double scale = double(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = filter.support * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.first.resize(size_t(out_size));
  c.count.resize(size_t(out_size));
  c.weights.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> k(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[size_t(x)] = filter.fn((x + xmin - center + 0.5) * ss);
      ww += k[size_t(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[size_t(x)] / ww : k[size_t(x)];
      c.weights[size_t(xx) * size_t(c.ksize) + size_t(x)] =
          int32_t(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.first[size_t(xx)] = xmin;
    c.count[size_t(xx)] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t v) {
  if (v >= (int64_t(1) << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

// One separable pass along x (horizontal) or y (vertical).
Image resample_pass(const Image& in, int out_size, bool horizontal, const Filter& filter) {
  const int in_size = horizontal ? in.width : in.height;
  Coeffs c = precompute(in_size, out_size, filter);
  Image out(horizontal ? out_size : in.width, horizontal ? in.height : out_size, in.channels);
  const int ch = in.channels;
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      const int o = horizontal ? x : y;
      const int32_t* k = &c.weights[size_t(o) * size_t(c.ksize)];
      const int first = c.first[size_t(o)], count = c.count[size_t(o)];
      for (int p = 0; p < ch; ++p) {
        int64_t acc = int64_t(1) << (kPrecisionBits - 1);
        for (int t = 0; t < count; ++t) {
          const uint8_t* src = horizontal ? in.at(first + t, y) : in.at(x, first + t);
          acc += int64_t(src[p]) * k[t];
        }
        out.at(x, y)[p] = clip8(acc);
      }
    }
  }
  return out;
}

}  // namespace

Image resize_image(const Image& image, int width, int height, ResizeFilter filter) {
  if (width <= 0 || height <= 0 || width > (1 << 16) || height > (1 << 16))
    throw Error("cannot resize image to " + std::to_string(width) + "x" + std::to_string(height) +
                ": each side must be in 1..65536");
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * size_t(image.channels))
    throw Error("cannot resize an empty or inconsistent image");
  const Filter f = filter_for(filter);
  // PIL resamples horizontally first; the 8-bit intermediate makes the order matter in the last bit.
  Image out = image.width != width ? resample_pass(image, width, true, f) : image;
  if (out.height != height) out = resample_pass(out, height, false, f);
  return out;
}

}  // namespace pictor

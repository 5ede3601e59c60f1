// Writes the image fuzzer's seed corpus into a folder: PNG variants (palette, gray, 16-bit, alpha,
// interlaced, text chunks), JPEG with EXIF, WebP, and an infotext. Nothing binary is committed.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "../tests/image_samples.hpp"
#include "formats/image.hpp"

namespace s = pictor::samples;

static void put(const std::filesystem::path& dir, const char* name, const std::vector<uint8_t>& bytes) {
  std::ofstream(dir / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  auto pattern = [](int x, int y, int c) { return (x * 37 + y * 11 + c * 5) & 0xff; };
  pictor::Image rgb(12, 9, 3), rgba(12, 9, 4);
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 12; ++x) {
      for (int c = 0; c < 3; ++c) rgb.at(x, y)[c] = rgba.at(x, y)[c] = uint8_t(pattern(x, y, c));
      rgba.at(x, y)[3] = uint8_t(x * 20);
    }
  put(dir, "rgb.png",
      pictor::encode_png(
          rgb, {{"parameters",
                 "cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 12x9"}}));
  put(dir, "rgba.png", pictor::encode_png(rgba, {{"Comment", "h\xc3\xa9llo"}}));
  put(dir, "rgb.jpg", pictor::encode_jpeg(rgb, 90));
  put(dir, "exif.jpg",
      s::jpeg_with_app1(pictor::encode_jpeg(rgb, 90), s::exif_payload(6, "Steps: 1, Seed: 2, CFG scale: 3")));
  put(dir, "rgb.webp", pictor::encode_webp(rgb, 80));
  put(dir, "rgba_lossless.webp", pictor::encode_webp(rgba, 100, true));
  s::PngSpec p;
  p.color_type = PNG_COLOR_TYPE_PALETTE;
  p.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 9, 9}};
  p.palette_alpha = {255, 128, 0};
  p.bit_depth = 2;
  p.ztext = {{"parameters", "zipped, Steps: 3, Seed: 4, Size: 8x6"}};
  put(dir, "palette.png", s::make_png(p, [](int x, int y, int) { return (x + y) % 4; }));
  s::PngSpec g16;
  g16.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  g16.bit_depth = 16;
  g16.interlaced = true;
  put(dir, "gray16_interlaced.png", s::make_png(g16, [](int x, int y, int c) { return c ? 65535 : x * 4000 + y; }));
  s::PngSpec g1;
  g1.color_type = PNG_COLOR_TYPE_GRAY;
  g1.bit_depth = 1;
  put(dir, "gray1.png", s::make_png(g1, [](int x, int y, int) { return (x ^ y) & 1; }));
  put(dir, "bomb.png", s::png_with_claimed_size(100000, 100000));
  return 0;
}

#pragma once
// Generators for sample images used by test_image and as the image fuzzer's seed corpus. Images are
// always generated, never committed. Header-only so the clang-built fuzz seeder can include it.
#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "formats/image.hpp"

namespace pictor::samples {

// Raw PNG of any libpng colour type / bit depth. `sample(x, y, c)` gives the value of channel c
// (palette index for palette images) in 0..2^bit_depth-1.
struct PngSpec {
  int width = 8, height = 6;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;      // palette images
  std::vector<uint8_t> palette_alpha;  // tRNS for palette images
  bool trns_color = false;             // tRNS for gray/RGB images: trns_value is transparent
  png_color_16 trns_value{};
  std::vector<std::pair<std::string, std::string>> text;   // tEXt chunks
  std::vector<std::pair<std::string, std::string>> ztext;  // zTXt chunks
};

inline int png_channels(int color_type) {
  switch (color_type) {
    case PNG_COLOR_TYPE_GRAY: return 1;
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;  // palette
  }
}

inline void samples_png_write(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

// Packs rows (including sub-byte depths) and writes them with libpng.
inline std::vector<uint8_t> make_png(const PngSpec& s, const std::function<int(int, int, int)>& sample) {
  const int ch = png_channels(s.color_type);
  const size_t row_bytes = (size_t(s.width) * size_t(ch) * size_t(s.bit_depth) + 7) / 8;
  std::vector<std::vector<uint8_t>> rows(size_t(s.height), std::vector<uint8_t>(row_bytes, 0));
  for (int y = 0; y < s.height; ++y) {
    auto& row = rows[size_t(y)];
    size_t bit = 0;
    for (int x = 0; x < s.width; ++x) {
      for (int c = 0; c < ch; ++c) {
        unsigned v = unsigned(sample(x, y, c));
        if (s.bit_depth == 16) {
          row[bit / 8] = uint8_t(v >> 8);
          row[bit / 8 + 1] = uint8_t(v);
        } else if (s.bit_depth == 8) {
          row[bit / 8] = uint8_t(v);
        } else {
          row[bit / 8] |= uint8_t(v << (8 - s.bit_depth - bit % 8));
        }
        bit += size_t(s.bit_depth);
      }
    }
  }
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> ptrs;
  for (auto& r : rows) ptrs.push_back(r.data());
  std::vector<png_text> texts;
  for (auto& [k, v] : s.text)
    texts.push_back(png_text{PNG_TEXT_COMPRESSION_NONE, const_cast<char*>(k.c_str()), const_cast<char*>(v.c_str()),
                             v.size(), 0, nullptr, nullptr});
  for (auto& [k, v] : s.ztext)
    texts.push_back(png_text{PNG_TEXT_COMPRESSION_zTXt, const_cast<char*>(k.c_str()), const_cast<char*>(v.c_str()),
                             v.size(), 0, nullptr, nullptr});
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng failed to write a sample PNG");
  }
  png_set_write_fn(png, &out, samples_png_write, nullptr);
  png_set_IHDR(png, info, png_uint_32(s.width), png_uint_32(s.height), s.bit_depth, s.color_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), int(s.palette.size()));
  if (!s.palette_alpha.empty()) png_set_tRNS(png, info, s.palette_alpha.data(), int(s.palette_alpha.size()), nullptr);
  if (s.trns_color) png_set_tRNS(png, info, nullptr, 0, &s.trns_value);
  if (!texts.empty()) png_set_text(png, info, texts.data(), int(texts.size()));
  png_write_info(png, info);
  png_write_image(png, ptrs.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

inline void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

// A structurally valid PNG whose IHDR claims width x height (a decompression-bomb header).
inline std::vector<uint8_t> png_with_claimed_size(uint32_t width, uint32_t height) {
  std::vector<uint8_t> f = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    put_be32(f, uint32_t(body.size()));
    std::vector<uint8_t> tb(type, type + 4);
    tb.insert(tb.end(), body.begin(), body.end());
    f.insert(f.end(), tb.begin(), tb.end());
    put_be32(f, uint32_t(crc32(0, tb.data(), uInt(tb.size()))));
  };
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, no interlace
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});  // empty zlib stream
  chunk("IEND", {});
  return f;
}

inline void put16(std::vector<uint8_t>& v, uint16_t x, bool be) {
  if (be) {
    v.push_back(uint8_t(x >> 8));
    v.push_back(uint8_t(x));
  } else {
    v.push_back(uint8_t(x));
    v.push_back(uint8_t(x >> 8));
  }
}
inline void put32(std::vector<uint8_t>& v, uint32_t x, bool be) {
  if (be) {
    put16(v, uint16_t(x >> 16), true);
    put16(v, uint16_t(x), true);
  } else {
    put16(v, uint16_t(x), false);
    put16(v, uint16_t(x >> 16), false);
  }
}

// "Exif\0\0" + TIFF with IFD0 {Orientation, ExifIFD pointer} and, when comment is non-empty, an Exif
// IFD with a UserComment in piexif's "UNICODE" (UTF-16BE, ASCII text only here) encoding.
inline std::vector<uint8_t> exif_payload(int orientation, const std::string& comment, bool big_endian = true) {
  std::vector<uint8_t> t;
  t.insert(t.end(), {'E', 'x', 'i', 'f', 0, 0});
  t.insert(t.end(), big_endian ? std::initializer_list<uint8_t>{'M', 'M'} : std::initializer_list<uint8_t>{'I', 'I'});
  put16(t, 42, big_endian);
  put32(t, 8, big_endian);
  const uint16_t entries = comment.empty() ? 1 : 2;
  put16(t, entries, big_endian);
  put16(t, 0x0112, big_endian);
  put16(t, 3, big_endian);
  put32(t, 1, big_endian);
  put16(t, uint16_t(orientation), big_endian);
  put16(t, 0, big_endian);
  const uint32_t exif_ifd = 8 + 2 + entries * 12 + 4;
  if (!comment.empty()) {
    put16(t, 0x8769, big_endian);
    put16(t, 4, big_endian);
    put32(t, 1, big_endian);
    put32(t, exif_ifd, big_endian);
  }
  put32(t, 0, big_endian);  // no next IFD
  if (!comment.empty()) {
    std::vector<uint8_t> uc = {'U', 'N', 'I', 'C', 'O', 'D', 'E', 0};
    for (char c : comment) put16(uc, uint16_t(uint8_t(c)), true);
    put16(t, 1, big_endian);
    put16(t, 0x9286, big_endian);
    put16(t, 7, big_endian);
    put32(t, uint32_t(uc.size()), big_endian);
    put32(t, exif_ifd + 2 + 12 + 4, big_endian);
    put32(t, 0, big_endian);
    t.insert(t.end(), uc.begin(), uc.end());
  }
  return t;
}

// Inserts an APP1 segment right after a JPEG's SOI marker.
inline std::vector<uint8_t> jpeg_with_app1(const std::vector<uint8_t>& jpeg, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);
  out.push_back(0xff);
  out.push_back(0xe1);
  put16(out, uint16_t(payload.size() + 2), true);
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

// A picture with some structure (gradients + a checkerboard that moves with `seed`), so image tiles and
// different seeds give different pixels.
inline Image pattern_image(int w, int h, int seed) {
  Image im(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = uint8_t((x * 255) / std::max(1, w - 1));
      p[1] = uint8_t((y * 255) / std::max(1, h - 1));
      p[2] = uint8_t(((x / 8 + y / 8 + seed) % 2) * 200);
    }
  return im;
}

}  // namespace pictor::samples

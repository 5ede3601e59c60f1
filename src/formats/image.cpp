// Format dispatch, file I/O and limits shared by the PNG/JPEG/WebP codecs.
#include "formats/image.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "core/error.hpp"
#include "formats/image_codecs.hpp"

namespace fs = std::filesystem;

namespace pictor {

const char* image_format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::Png: return "PNG";
    case ImageFormat::Jpeg: return "JPEG";
    case ImageFormat::Webp: return "WebP";
    case ImageFormat::Unknown: break;
  }
  return "unknown";
}

ImageFormat detect_image_format(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, kPng, 8) == 0) return ImageFormat::Png;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return ImageFormat::Jpeg;
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return ImageFormat::Webp;
  return ImageFormat::Unknown;
}

namespace image_detail {

void check_dimensions(uint64_t width, uint64_t height, const std::string& source, const ImageLimits& limits,
                      const char* format) {
  if (width == 0 || height == 0)
    throw Error("image '" + source + "': " + format + " header has zero size " + std::to_string(width) + "x" +
                std::to_string(height));
  // Both fit in 32 bits in every supported format, so the product cannot overflow.
  if (width > 0x7fffffff || height > 0x7fffffff || width * height > limits.max_pixels)
    throw Error("image '" + source + "': " + format + " is " + std::to_string(width) + "x" + std::to_string(height) +
                " pixels, over the limit of " + std::to_string(limits.max_pixels) + " pixels");
}

std::string latin1_to_utf8(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve(size);
  for (size_t i = 0; i < size; ++i) {
    uint8_t c = data[i];
    if (c < 0x80) {
      out.push_back(char(c));
    } else {
      out.push_back(char(0xc0 | (c >> 6)));
      out.push_back(char(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

static void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xc0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xe0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(char(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(char(0xf0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(char(0x80 | (cp & 0x3f)));
  }
}

std::string utf16_to_utf8(const uint8_t* data, size_t size, bool big_endian) {
  std::string out;
  auto unit = [&](size_t i) -> uint32_t {
    return big_endian ? (uint32_t(data[i]) << 8 | data[i + 1]) : (uint32_t(data[i + 1]) << 8 | data[i]);
  };
  for (size_t i = 0; i + 1 < size; i += 2) {
    uint32_t u = unit(i);
    if (u >= 0xd800 && u < 0xdc00 && i + 3 < size) {
      uint32_t lo = unit(i + 2);
      if (lo >= 0xdc00 && lo < 0xe000) {
        append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00));
        i += 2;
        continue;
      }
    }
    if (u >= 0xd800 && u < 0xe000) u = 0xfffd;  // unpaired surrogate
    append_utf8(out, u);
  }
  return out;
}

}  // namespace image_detail

using namespace image_detail;

static std::string unknown_format_message(const uint8_t* data, size_t size, const std::string& source) {
  if (size == 0) return "image '" + source + "': file is empty";
  std::string msg = "image '" + source + "': not a PNG, JPEG or WebP file (unrecognised signature";
  char hex[8];
  msg += ":";
  for (size_t i = 0; i < std::min<size_t>(size, 8); ++i) {
    std::snprintf(hex, sizeof hex, " %02x", data[i]);
    msg += hex;
  }
  return msg + ")";
}

Image decode_image(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits) {
  if (size > limits.max_bytes)
    throw Error("image '" + source + "': file is " + std::to_string(size) + " bytes, over the limit of " +
                std::to_string(limits.max_bytes) + " bytes");
  switch (detect_image_format(data, size)) {
    case ImageFormat::Png: return decode_png(data, size, source, limits);
    case ImageFormat::Jpeg: return decode_jpeg(data, size, source, limits);
    case ImageFormat::Webp: return decode_webp(data, size, source, limits);
    case ImageFormat::Unknown: break;
  }
  throw Error(unknown_format_message(data, size, source));
}

ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& source) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::Png: return probe_png(data, size, source);
    case ImageFormat::Jpeg: return probe_jpeg(data, size, source);
    case ImageFormat::Webp: return probe_webp(data, size, source);
    case ImageFormat::Unknown: break;
  }
  throw Error(unknown_format_message(data, size, source));
}

std::vector<uint8_t> read_file_bytes(const fs::path& path, const ImageLimits& limits) {
  const std::string name = path.string();
  std::vector<uint8_t> bytes;
  auto read_stream = [&](std::istream& in) {
    char buf[65536];
    while (in) {
      in.read(buf, sizeof buf);
      bytes.insert(bytes.end(), buf, buf + in.gcount());
      if (bytes.size() > limits.max_bytes)
        throw Error("image '" + name + "': more than the limit of " + std::to_string(limits.max_bytes) + " bytes");
    }
  };
  if (name == "-") {
    read_stream(std::cin);
    return bytes;
  }
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("image '" + name + "': is a directory, not an image file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("image '" + name + "': cannot open file: " + std::strerror(errno));
  read_stream(in);
  if (in.bad()) throw Error("image '" + name + "': read error");
  return bytes;
}

Image read_image(const fs::path& path, const ImageLimits& limits) {
  auto bytes = read_file_bytes(path, limits);
  return decode_image(bytes.data(), bytes.size(), path.string(), limits);
}

static void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  if (path.string() == "-") {
    std::cout.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    std::cout.flush();
    if (!std::cout) throw Error("cannot write image to stdout");
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("cannot create image file '" + path.string() + "': " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  out.close();
  if (!out) throw Error("cannot write image file '" + path.string() + "'");
}

void write_png(const fs::path& path, const Image& image, const TextChunks& text_chunks) {
  write_bytes(path, encode_png(image, text_chunks));
}

void write_image(const fs::path& path, const Image& image, const TextChunks& text_chunks, int quality) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (ext == ".png" || path.string() == "-") {
    write_bytes(path, encode_png(image, text_chunks));
  } else if (ext == ".jpg" || ext == ".jpeg") {
    write_bytes(path, encode_jpeg(image, quality));
  } else if (ext == ".webp") {
    write_bytes(path, encode_webp(image, quality));
  } else {
    throw Error("cannot write image '" + path.string() + "': unknown extension '" + ext +
                "' (use .png, .jpg, .jpeg or .webp)");
  }
}

TextChunks read_png_text(const fs::path& path) {
  auto bytes = read_file_bytes(path);
  return read_png_text(bytes.data(), bytes.size(), path.string());
}

TextChunks read_image_text(const uint8_t* data, size_t size, const std::string& source) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::Png: return read_png_text(data, size, source);
    case ImageFormat::Jpeg: return jpeg_text(data, size);
    case ImageFormat::Webp: return webp_text(data, size);
    case ImageFormat::Unknown: break;
  }
  throw Error(unknown_format_message(data, size, source));
}

Image apply_exif_orientation(const Image& src, int orientation) {
  if (orientation < 2 || orientation > 8) return src;
  const bool swap = orientation >= 5;
  const int W = src.width, H = src.height;
  Image dst(swap ? H : W, swap ? W : H, src.channels);
  const size_t c = size_t(src.channels);
  for (int dy = 0; dy < dst.height; ++dy) {
    for (int dx = 0; dx < dst.width; ++dx) {
      int sx = dx, sy = dy;
      switch (orientation) {
        case 2: sx = W - 1 - dx; break;                   // mirror horizontally
        case 3: sx = W - 1 - dx, sy = H - 1 - dy; break;  // rotate 180
        case 4: sy = H - 1 - dy; break;                   // mirror vertically
        case 5: sx = dy, sy = dx; break;                  // transpose
        case 6: sx = dy, sy = H - 1 - dx; break;          // rotate 90 clockwise
        case 7: sx = W - 1 - dy, sy = H - 1 - dx; break;  // transverse
        case 8: sx = W - 1 - dy, sy = dx; break;          // rotate 90 counter-clockwise
      }
      std::memcpy(dst.at(dx, dy), src.at(sx, sy), c);
    }
  }
  return dst;
}

}  // namespace pictor

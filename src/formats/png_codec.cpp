// PNG through libpng, plus a small chunk walker for text chunks.
//
// libpng reports errors by longjmp to the setjmp of the calling frame. Every libpng call therefore sits
// in a small function (png_step_*) whose locals are all trivially destructible; the C++ objects that
// own memory (the libpng structs' guard, the pixel buffer) live in the caller, which the longjmp never
// crosses. The step returns false and the caller throws pictor::Error with libpng's message.
#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "formats/image_codecs.hpp"

namespace pictor {
namespace {

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

struct PngIo {
  const uint8_t* data = nullptr;
  size_t size = 0;
  size_t pos = 0;
  std::vector<uint8_t>* out = nullptr;  // when writing
  bool out_of_memory = false;
  char error[256] = {0};
};

void png_error_cb(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->error, sizeof io->error, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_warning_cb(png_structp, png_const_charp) {}  // ancillary problems are not fatal

void png_read_cb(png_structp png, png_bytep out, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "file is truncated");
  std::memcpy(out, io->data + io->pos, n);
  io->pos += n;
}

void png_write_cb(png_structp png, png_bytep data, size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  try {
    io->out->insert(io->out->end(), data, data + n);
  } catch (const std::bad_alloc&) {
    io->out_of_memory = true;
  }
  // png_error longjmps; it must not run inside the catch handler above.
  if (io->out_of_memory) png_error(png, "out of memory while encoding");
}

void png_flush_cb(png_structp) {}

// Owns the libpng read structs; destroyed normally in the C++ frame.
struct PngReadGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngReadGuard() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct PngWriteGuard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriteGuard() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

bool png_step_read_info(png_structp png, png_infop info, png_uint_32* width, png_uint_32* height) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  *width = png_get_image_width(png, info);
  *height = png_get_image_height(png, info);
  return true;
}

// Normalises every PNG flavour to 8-bit RGB or RGBA.
bool png_step_transforms(png_structp png, png_infop info, int* channels) {
  if (setjmp(png_jmpbuf(png))) return false;
  const int color = png_get_color_type(png, info);
  png_set_expand(png);  // palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha
  // PIL keeps the most significant byte of 16-bit samples; so do we.
  png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *channels = png_get_channels(png, info);
  return true;
}

bool png_step_read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

bool png_step_write(png_structp png, png_infop info, const Image* image, png_bytepp rows, png_textp texts,
                    int num_texts) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_IHDR(png, info, png_uint_32(image->width), png_uint_32(image->height), 8,
               image->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (num_texts > 0) png_set_text(png, info, texts, num_texts);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

[[noreturn]] void fail(const std::string& source, const PngIo& io) {
  throw Error("image '" + source + "': invalid PNG: " + (io.error[0] ? io.error : "decoding failed"));
}

void validate_for_encoding(const Image& image, const char* format) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 3 && image.channels != 4) ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * size_t(image.channels))
    throw Error(std::string("cannot encode ") + format + ": image is " + std::to_string(image.width) + "x" +
                std::to_string(image.height) + "x" + std::to_string(image.channels) + " with " +
                std::to_string(image.pixels.size()) + " bytes (need RGB or RGBA with width*height*channels bytes)");
}

void validate_text_key(const std::string& key) {
  bool ok = !key.empty() && key.size() <= 79 && key.front() != ' ' && key.back() != ' ' &&
            key.find("  ") == std::string::npos;
  for (unsigned char c : key) ok = ok && c >= 32 && c <= 126;
  if (!ok)
    throw Error("PNG text key '" + key +
                "' is invalid: it must be 1-79 printable ASCII characters without leading, trailing or double "
                "spaces");
}

// Inflates a zlib stream, giving up (empty result, false) past `limit` bytes or on corrupt data.
bool inflate_limited(const uint8_t* data, size_t size, size_t limit, std::string* out) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return false;
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = uInt(size);
  char buf[16384];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    out->append(buf, sizeof buf - zs.avail_out);
    if (out->size() > limit) {
      rc = Z_MEM_ERROR;
      break;
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) break;  // truncated stream
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END;
}

}  // namespace

namespace image_detail {

ImageHeader probe_png(const uint8_t* data, size_t size, const std::string& source) {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
  if (size < 24 || std::memcmp(data + 12, "IHDR", 4) != 0)
    throw Error("image '" + source + "': invalid PNG: missing IHDR header (file truncated?)");
  return ImageHeader{ImageFormat::Png, int(be32(data + 16) & 0x7fffffff), int(be32(data + 20) & 0x7fffffff)};
}

namespace {
// Walks the chunk list before libpng sees it: a chunk whose declared length runs past the end of the
// file is refused here, because libpng allocates the declared length up front (the fuzzer found an
// 860-byte file making it allocate 2 GB).
void check_png_chunk_lengths(const uint8_t* data, size_t size, const std::string& source) {
  size_t pos = 8;  // after the signature
  while (pos + 8 <= size) {
    const uint64_t len = be32(data + pos);
    if (len > 0x7fffffffu || pos + 12 + len > size)
      throw Error("image '" + source + "': invalid PNG: chunk at byte " + std::to_string(pos) + " claims " +
                  std::to_string(len) + " bytes but the file ends first (truncated or corrupt)");
    if (std::memcmp(data + pos + 4, "IEND", 4) == 0) return;
    pos += 12 + len;
  }
}
}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits) {
  check_png_chunk_lengths(data, size, source);
  PngIo io;
  io.data = data;
  io.size = size;
  PngReadGuard g;
  g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_error_cb, png_warning_cb);
  if (!g.png) throw Error("image '" + source + "': cannot initialise libpng");
  g.info = png_create_info_struct(g.png);
  if (!g.info) throw Error("image '" + source + "': cannot initialise libpng");
  png_set_read_fn(g.png, &io, png_read_cb);
  // A chunk header may claim gigabytes (a 2 GB iCCP/text chunk was found by the fuzzer): cap what libpng
  // allocates for any ancillary chunk so a tiny file cannot demand huge memory.
  png_set_chunk_malloc_max(g.png, 8u << 20);

  png_uint_32 width = 0, height = 0;
  if (!png_step_read_info(g.png, g.info, &width, &height)) fail(source, io);
  // Before any pixel memory: a tiny file may claim an enormous size.
  check_dimensions(width, height, source, limits, "PNG");
  int channels = 0;
  if (!png_step_transforms(g.png, g.info, &channels)) fail(source, io);
  if (channels != 3 && channels != 4)
    throw Error("image '" + source + "': invalid PNG: unexpected " + std::to_string(channels) + " channels");

  Image image(int(width), int(height), channels);
  std::vector<png_bytep> rows(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = image.at(0, int(y));
  if (!png_step_read_rows(g.png, rows.data())) fail(source, io);
  return image;
}

}  // namespace image_detail

std::vector<uint8_t> encode_png(const Image& image, const TextChunks& text_chunks) {
  validate_for_encoding(image, "PNG");
  std::vector<png_text> texts(text_chunks.size());
  for (size_t i = 0; i < text_chunks.size(); ++i) {
    const auto& [key, value] = text_chunks[i];
    validate_text_key(key);
    if (value.find('\0') != std::string::npos) throw Error("PNG text value for key '" + key + "' contains a NUL byte");
    bool ascii = true;
    for (unsigned char c : value) ascii = ascii && c < 0x80;
    png_text& t = texts[i];
    t.key = const_cast<char*>(key.c_str());
    t.text = const_cast<char*>(value.c_str());
    if (ascii) {
      t.compression = PNG_TEXT_COMPRESSION_NONE;  // tEXt
      t.text_length = value.size();
    } else {
      t.compression = PNG_ITXT_COMPRESSION_NONE;  // iTXt, UTF-8
      t.itxt_length = value.size();
      t.lang = const_cast<char*>("");
      t.lang_key = const_cast<char*>("");
    }
  }

  std::vector<uint8_t> out;
  PngIo io;
  io.out = &out;
  PngWriteGuard g;
  g.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_error_cb, png_warning_cb);
  if (!g.png) throw Error("cannot initialise libpng for writing");
  g.info = png_create_info_struct(g.png);
  if (!g.info) throw Error("cannot initialise libpng for writing");
  png_set_write_fn(g.png, &io, png_write_cb, png_flush_cb);
  std::vector<png_bytep> rows(size_t(image.height));
  for (int y = 0; y < image.height; ++y) rows[size_t(y)] = const_cast<png_bytep>(image.at(0, y));
  if (!png_step_write(g.png, g.info, &image, rows.data(), texts.data(), int(texts.size())))
    throw Error(std::string("PNG encoding failed: ") + io.error);
  return out;
}

TextChunks read_png_text(const uint8_t* data, size_t size, const std::string& source) {
  if (detect_image_format(data, size) != ImageFormat::Png)
    throw Error("image '" + source + "': not a PNG file (text chunks are only read from PNG)");
  constexpr size_t kMaxChunkText = 16u << 20, kMaxTotalText = 64u << 20;
  TextChunks out;
  size_t total = 0;
  size_t pos = 8;
  while (size - pos >= 12) {
    const uint32_t len = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    const uint8_t* body = data + pos + 8;
    if (len > size - pos - 12) break;  // truncated file: keep what was read
    pos += 12 + size_t(len);
    if (std::memcmp(type, "IEND", 4) == 0) break;
    const bool text = std::memcmp(type, "tEXt", 4) == 0, ztext = std::memcmp(type, "zTXt", 4) == 0,
               itext = std::memcmp(type, "iTXt", 4) == 0;
    if (!text && !ztext && !itext) continue;
    if (uint32_t(crc32(0, type, uInt(4 + len))) != be32(body + len)) continue;  // corrupt chunk
    const uint8_t* end = body + len;
    const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(body, 0, len));
    if (!nul || nul == body) continue;
    std::string key = image_detail::latin1_to_utf8(body, size_t(nul - body));
    const uint8_t* p = nul + 1;
    std::string value;
    if (text) {
      value = image_detail::latin1_to_utf8(p, size_t(end - p));
    } else if (ztext) {
      std::string raw;
      if (p >= end || *p != 0 || !inflate_limited(p + 1, size_t(end - p - 1), kMaxChunkText, &raw)) continue;
      value = image_detail::latin1_to_utf8(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
    } else {
      if (end - p < 2) continue;
      const bool compressed = p[0] != 0;
      p += 2;
      for (int skip = 0; skip < 2; ++skip) {  // language tag and translated keyword
        const uint8_t* z = static_cast<const uint8_t*>(std::memchr(p, 0, size_t(end - p)));
        p = z ? z + 1 : end + 1;
        if (p > end) break;
      }
      if (p > end) continue;
      if (compressed) {
        if (!inflate_limited(p, size_t(end - p), kMaxChunkText, &value)) continue;
      } else {
        value.assign(reinterpret_cast<const char*>(p), size_t(end - p));
      }
    }
    total += value.size();
    if (total > kMaxTotalText) break;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace pictor

// JPEG through libjpeg(-turbo).
//
// libjpeg's default error handler calls exit(); ours formats the message and longjmps back to the
// setjmp in one of the small jpeg_step_* functions below, whose locals are all trivially destructible.
// Memory-owning C++ objects live in the callers, which the longjmp never crosses.
#include <cstdio>
// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>

#include <csetjmp>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "formats/image_codecs.hpp"

namespace pictor {
namespace {

// Progressive JPEGs can repeat scans; a file with thousands of tiny scans costs a full-image pass
// each. Real encoders use at most a few dozen.
constexpr int kMaxScans = 1000;

struct JpegError {
  jpeg_error_mgr mgr;  // first member: libjpeg casts cinfo->err to this struct
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX + 64];
};

void jpeg_error_exit_cb(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings are ignored except a premature end of data: libjpeg would pad the image with grey, which
// silently hides a truncated file (PIL refuses truncated images the same way).
void jpeg_emit_message_cb(j_common_ptr cinfo, int level) {
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_error_exit_cb(cinfo);
  if (level < 0) cinfo->err->num_warnings++;
}

void jpeg_progress_cb(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor) return;
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxScans) {
    auto* err = reinterpret_cast<JpegError*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than %d progressive scans", kMaxScans);
    std::longjmp(err->jump, 1);
  }
}

void init_error(JpegError* err) {
  jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_error_exit_cb;
  err->mgr.emit_message = jpeg_emit_message_cb;
  err->message[0] = 0;
}

struct DecompressGuard {
  jpeg_decompress_struct cinfo;
  bool created = false;
  ~DecompressGuard() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
};

struct CompressGuard {
  jpeg_compress_struct cinfo;
  bool created = false;
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  ~CompressGuard() {
    if (created) jpeg_destroy_compress(&cinfo);
    std::free(buffer);  // allocated by jpeg_mem_dest with malloc
  }
};

bool jpeg_step_create(j_decompress_ptr cinfo, JpegError* err) {
  if (setjmp(err->jump)) return false;
  jpeg_create_decompress(cinfo);
  return true;
}

bool jpeg_step_create(j_compress_ptr cinfo, JpegError* err) {
  if (setjmp(err->jump)) return false;
  jpeg_create_compress(cinfo);
  return true;
}

bool jpeg_step_read_header(j_decompress_ptr cinfo, JpegError* err, const uint8_t* data, size_t size) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(cinfo, TRUE);
  return true;
}

bool jpeg_step_start(j_decompress_ptr cinfo, JpegError* err) {
  if (setjmp(err->jump)) return false;
  jpeg_start_decompress(cinfo);
  return true;
}

// CMYK as stored by Adobe applications is inverted (0 = full ink); libjpeg reports the Adobe marker.
inline uint8_t cmyk_channel(int c, int k, bool inverted) {
  return inverted ? uint8_t((c * k + 127) / 255) : uint8_t(((255 - c) * (255 - k) + 127) / 255);
}

bool jpeg_step_read_rows(j_decompress_ptr cinfo, JpegError* err, uint8_t* pixels, uint8_t* cmyk_row) {
  if (setjmp(err->jump)) return false;
  const size_t width = cinfo->output_width;
  const bool inverted = cinfo->saw_Adobe_marker;
  while (cinfo->output_scanline < cinfo->output_height) {
    uint8_t* dst = pixels + size_t(cinfo->output_scanline) * width * 3;
    JSAMPROW row = cmyk_row ? cmyk_row : dst;
    if (jpeg_read_scanlines(cinfo, &row, 1) != 1) return false;
    if (cmyk_row) {
      for (size_t x = 0; x < width; ++x) {
        const uint8_t* s = cmyk_row + 4 * x;
        for (int ch = 0; ch < 3; ++ch) dst[3 * x + size_t(ch)] = cmyk_channel(s[ch], s[3], inverted);
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

bool jpeg_step_encode(j_compress_ptr cinfo, JpegError* err, unsigned char** buffer, unsigned long* size,
                      const Image* image, int quality, uint8_t* rgb_row) {
  if (setjmp(err->jump)) return false;
  jpeg_mem_dest(cinfo, buffer, size);
  cinfo->image_width = JDIMENSION(image->width);
  cinfo->image_height = JDIMENSION(image->height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    const uint8_t* src = image->at(0, int(cinfo->next_scanline));
    JSAMPROW row;
    if (image->channels == 3) {
      row = const_cast<JSAMPROW>(src);
    } else {  // drop alpha
      for (int x = 0; x < image->width; ++x) std::memcpy(rgb_row + 3 * x, src + 4 * x, 3);
      row = rgb_row;
    }
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

[[noreturn]] void fail(const std::string& source, const JpegError& err) {
  throw Error("image '" + source + "': invalid JPEG: " + (err.message[0] ? err.message : "decoding failed"));
}

uint16_t be16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}

// Calls fn(marker, payload, length) for each marker segment before the first scan.
template <typename Fn>
void walk_jpeg_segments(const uint8_t* data, size_t size, Fn fn) {
  size_t pos = 2;
  while (pos + 4 <= size) {
    if (data[pos] != 0xff) return;
    uint8_t marker = data[pos + 1];
    if (marker == 0xff) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker == 0x01) {
      pos += 2;
      continue;
    }
    if (marker == 0xda || marker == 0xd9) return;  // start of scan / end of image
    size_t len = be16(data + pos + 2);
    if (len < 2 || len > size - pos - 2) return;
    fn(marker, data + pos + 4, len - 2);
    pos += 2 + len;
  }
}

bool valid_utf8(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = p[i];
    size_t extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
    if (extra == 9 || extra > n - i - 1) return false;
    for (size_t k = 1; k <= extra; ++k)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    i += 1 + extra;
  }
  return true;
}

}  // namespace

namespace image_detail {

ImageHeader probe_jpeg(const uint8_t* data, size_t size, const std::string& source) {
  ImageHeader h{ImageFormat::Jpeg, 0, 0};
  walk_jpeg_segments(data, size, [&](uint8_t marker, const uint8_t* p, size_t n) {
    // SOF0..SOF15 except DHT (c4), JPG (c8) and DAC (cc) carry the frame size.
    bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof && n >= 5 && h.width == 0) {
      h.height = be16(p + 1);
      h.width = be16(p + 3);
    }
  });
  if (h.width == 0 || h.height == 0)
    throw Error("image '" + source + "': invalid JPEG: no frame header with a non-zero size");
  return h;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits) {
  JpegError err;
  init_error(&err);
  DecompressGuard g;
  g.cinfo.err = &err.mgr;
  if (!jpeg_step_create(&g.cinfo, &err)) fail(source, err);
  g.created = true;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = jpeg_progress_cb;
  g.cinfo.progress = &progress;
  if (!jpeg_step_read_header(&g.cinfo, &err, data, size)) fail(source, err);
  // Before any pixel memory: a tiny file may claim an enormous size.
  check_dimensions(g.cinfo.image_width, g.cinfo.image_height, source, limits, "JPEG");

  bool cmyk = false;
  switch (g.cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: g.cinfo.out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK:
      g.cinfo.out_color_space = JCS_CMYK;
      cmyk = true;
      break;
    default:
      throw Error("image '" + source + "': unsupported JPEG colour space " + std::to_string(g.cinfo.jpeg_color_space));
  }
  int orientation = 1;
  for (jpeg_saved_marker_ptr m = g.cinfo.marker_list; m; m = m->next)
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0)
      orientation = parse_exif(m->data + 6, m->data_length - 6).orientation;

  if (!jpeg_step_start(&g.cinfo, &err)) fail(source, err);
  if (g.cinfo.output_components != (cmyk ? 4 : 3))
    throw Error("image '" + source + "': invalid JPEG: unexpected " + std::to_string(g.cinfo.output_components) +
                " output components");
  Image image(int(g.cinfo.output_width), int(g.cinfo.output_height), 3);
  std::vector<uint8_t> cmyk_row(cmyk ? size_t(g.cinfo.output_width) * 4 : 0);
  if (!jpeg_step_read_rows(&g.cinfo, &err, image.pixels.data(), cmyk ? cmyk_row.data() : nullptr)) {
    if (!err.message[0]) std::snprintf(err.message, sizeof err.message, "file is truncated");
    fail(source, err);
  }
  return orientation == 1 ? image : apply_exif_orientation(image, orientation);
}

TextChunks jpeg_text(const uint8_t* data, size_t size) {
  TextChunks out;
  walk_jpeg_segments(data, size, [&](uint8_t marker, const uint8_t* p, size_t n) {
    if (marker == JPEG_APP0 + 1 && n >= 6 && std::memcmp(p, "Exif\0\0", 6) == 0) {
      ExifInfo exif = parse_exif(p + 6, n - 6);
      if (exif.has_user_comment) out.emplace_back("parameters", exif.user_comment);
    } else if (marker == JPEG_COM) {
      out.emplace_back("comment",
                       valid_utf8(p, n) ? std::string(reinterpret_cast<const char*>(p), n) : latin1_to_utf8(p, n));
    }
  });
  return out;
}

}  // namespace image_detail

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 3 && image.channels != 4) ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * size_t(image.channels))
    throw Error("cannot encode JPEG: image is " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                "x" + std::to_string(image.channels) + " with " + std::to_string(image.pixels.size()) + " bytes");
  if (image.width > 65500 || image.height > 65500)
    throw Error("cannot encode JPEG: " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " is over the format's 65500 pixel limit");
  if (quality < 1 || quality > 100) throw Error("JPEG quality " + std::to_string(quality) + " is not in 1..100");
  JpegError err;
  init_error(&err);
  CompressGuard g;
  g.cinfo.err = &err.mgr;
  if (!jpeg_step_create(&g.cinfo, &err)) throw Error(std::string("cannot initialise libjpeg: ") + err.message);
  g.created = true;
  std::vector<uint8_t> rgb_row(size_t(image.width) * 3);
  if (!jpeg_step_encode(&g.cinfo, &err, &g.buffer, &g.size, &image, quality, rgb_row.data()))
    throw Error(std::string("JPEG encoding failed: ") + err.message);
  return std::vector<uint8_t>(g.buffer, g.buffer + g.size);
}

}  // namespace pictor

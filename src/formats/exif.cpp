// A minimal, bounds-checked EXIF (TIFF) reader: only the Orientation tag of IFD0 and the UserComment
// of the Exif sub-IFD, where AUTOMATIC1111 (through piexif) stores generation parameters in JPEG/WebP.
#include <cstring>

#include "formats/image_codecs.hpp"

namespace pictor::image_detail {
namespace {

struct TiffReader {
  const uint8_t* data;
  size_t size;
  bool big_endian;

  bool has(size_t off, size_t n) const { return off <= size && n <= size - off; }
  uint16_t u16(size_t off) const {
    return big_endian ? uint16_t(data[off] << 8 | data[off + 1]) : uint16_t(data[off + 1] << 8 | data[off]);
  }
  uint32_t u32(size_t off) const {
    return big_endian ? uint32_t(data[off]) << 24 | uint32_t(data[off + 1]) << 16 | uint32_t(data[off + 2]) << 8 |
                            data[off + 3]
                      : uint32_t(data[off + 3]) << 24 | uint32_t(data[off + 2]) << 16 | uint32_t(data[off + 1]) << 8 |
                            data[off];
  }
};

constexpr uint16_t kTagOrientation = 0x0112, kTagExifIfd = 0x8769, kTagUserComment = 0x9286;
constexpr uint16_t kTypeShort = 3, kTypeLong = 4, kTypeUndefined = 7;
constexpr size_t kMaxIfdEntries = 4096;

// Calls fn(tag, type, count, entry_offset) for each entry of the IFD at `off`; false when out of range.
template <typename Fn>
bool walk_ifd(const TiffReader& r, size_t off, Fn fn) {
  if (!r.has(off, 2)) return false;
  size_t n = r.u16(off);
  if (n > kMaxIfdEntries || !r.has(off + 2, n * 12)) return false;
  for (size_t i = 0; i < n; ++i) {
    size_t e = off + 2 + i * 12;
    fn(r.u16(e), r.u16(e + 2), r.u32(e + 4), e);
  }
  return true;
}

// UTF-16 text written without a BOM: for mostly-ASCII text the zero bytes sit on even offsets in big
// endian and odd offsets in little endian. piexif writes big endian.
bool guess_utf16_big_endian(const uint8_t* p, size_t n) {
  if (n >= 2 && p[0] == 0xfe && p[1] == 0xff) return true;
  if (n >= 2 && p[0] == 0xff && p[1] == 0xfe) return false;
  size_t even = 0, odd = 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    even += p[i] == 0;
    odd += p[i + 1] == 0;
  }
  return even >= odd;
}

std::string decode_user_comment(const uint8_t* p, size_t n) {
  if (n < 8) return {};
  const uint8_t* text = p + 8;
  size_t len = n - 8;
  if (std::memcmp(p, "UNICODE\0", 8) == 0) {
    bool be = guess_utf16_big_endian(text, len);
    if (len >= 2 && ((text[0] == 0xfe && text[1] == 0xff) || (text[0] == 0xff && text[1] == 0xfe))) {
      text += 2;
      len -= 2;
    }
    std::string s = utf16_to_utf8(text, len, be);
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  }
  // ASCII, JIS and undefined: bytes as they are, without the NUL padding.
  while (len > 0 && (text[len - 1] == 0 || text[len - 1] == ' ')) --len;
  return std::string(reinterpret_cast<const char*>(text), len);
}

}  // namespace

ExifInfo parse_exif(const uint8_t* tiff, size_t size) {
  ExifInfo info;
  if (size < 8) return info;
  bool be;
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    be = false;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    be = true;
  } else {
    return info;
  }
  TiffReader r{tiff, size, be};
  if (r.u16(2) != 42) return info;
  size_t exif_ifd = 0;
  walk_ifd(r, r.u32(4), [&](uint16_t tag, uint16_t type, uint32_t count, size_t e) {
    if (tag == kTagOrientation && type == kTypeShort && count >= 1) {
      int o = r.u16(e + 8);
      if (o >= 1 && o <= 8) info.orientation = o;
    } else if (tag == kTagExifIfd && type == kTypeLong && count == 1) {
      exif_ifd = r.u32(e + 8);
    }
  });
  if (exif_ifd != 0) {
    walk_ifd(r, exif_ifd, [&](uint16_t tag, uint16_t type, uint32_t count, size_t e) {
      if (tag != kTagUserComment || type != kTypeUndefined || info.has_user_comment) return;
      size_t off = count <= 4 ? e + 8 : r.u32(e + 8);
      if (!r.has(off, count)) return;
      info.has_user_comment = true;
      info.user_comment = decode_user_comment(tiff + off, count);
    });
  }
  return info;
}

ExifInfo parse_exif_payload(const uint8_t* data, size_t size) {
  if (size >= 6 && std::memcmp(data, "Exif\0\0", 6) == 0) return parse_exif(data + 6, size - 6);
  return parse_exif(data, size);
}

}  // namespace pictor::image_detail

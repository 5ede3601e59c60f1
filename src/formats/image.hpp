#pragma once
// 8-bit images in and out: PNG, JPEG and WebP decoding/encoding plus PNG text chunks (where
// AUTOMATIC1111-style "parameters" live). This layer is torch-free so it can be fuzzed and sanitized
// on its own; image_tensor.hpp converts to and from ATen tensors.
//
// Every failure (corrupt, truncated, empty, unknown format, over a limit) throws pictor::Error naming
// the source file and the problem. libpng/libjpeg report errors by longjmp; the codecs confine that to
// small C-style functions with only trivially destructible locals, so no C++ object is ever skipped.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pictor {

// Interleaved 8-bit pixels, row-major HWC, channels 3 (RGB) or 4 (RGBA).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h, int c) : width(w), height(h), channels(c), pixels(size_t(w) * size_t(h) * size_t(c)) {}
  size_t row_bytes() const { return size_t(width) * size_t(channels); }
  uint8_t* at(int x, int y) { return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * size_t(channels); }
  const uint8_t* at(int x, int y) const {
    return pixels.data() + (size_t(y) * size_t(width) + size_t(x)) * size_t(channels);
  }
};

// Limits applied before any pixel memory is allocated: max_pixels is checked against the dimensions
// in the file header, which defeats decompression bombs (a 100-byte PNG claiming 100000x100000).
struct ImageLimits {
  uint64_t max_bytes = 64ull << 20;   // size of the encoded file
  uint64_t max_pixels = 64ull << 20;  // width * height
};

enum class ImageFormat { Unknown, Png, Jpeg, Webp };
const char* image_format_name(ImageFormat f);  // "PNG", "JPEG", "WebP", "unknown"

// Identifies the format from the magic bytes (PNG signature, JPEG SOI, RIFF....WEBP).
ImageFormat detect_image_format(const uint8_t* data, size_t size);

// Decodes a PNG/JPEG/WebP held in memory. `source` names the file in errors. Palette, grayscale,
// 16-bit and interlaced PNGs become 8-bit RGB (or RGBA when the file has alpha or tRNS); grayscale and
// CMYK JPEGs become RGB and the EXIF orientation is applied; WebP keeps its alpha when it has one.
Image decode_image(const uint8_t* data, size_t size, const std::string& source, const ImageLimits& limits = {});

// Reads a whole file (or stdin for "-"), refusing more than limits.max_bytes.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path, const ImageLimits& limits = {});

// read_file_bytes + decode_image.
Image read_image(const std::filesystem::path& path, const ImageLimits& limits = {});

using TextChunks = std::vector<std::pair<std::string, std::string>>;

// PNG with optional text chunks (UTF-8 keys/values; ASCII values are stored as tEXt, others as
// uncompressed iTXt, like PIL's PngInfo.add_text). Keys must be 1-79 printable Latin-1 characters.
std::vector<uint8_t> encode_png(const Image& image, const TextChunks& text_chunks = {});
void write_png(const std::filesystem::path& path, const Image& image, const TextChunks& text_chunks = {});
// JPEG (baseline, 4:2:0 like PIL's default); an alpha channel is dropped. quality in 1..100.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 95);
// WebP, lossy with quality in 0..100, or lossless. Alpha is kept.
std::vector<uint8_t> encode_webp(const Image& image, int quality = 90, bool lossless = false);
// Picks the encoder from the extension (.png, .jpg/.jpeg, .webp; text chunks only go into PNG) and
// writes the file ("-" writes to stdout).
void write_image(const std::filesystem::path& path, const Image& image, const TextChunks& text_chunks = {},
                 int quality = 95);

// All tEXt, zTXt and iTXt chunks of a PNG in file order, values as UTF-8 (tEXt/zTXt are Latin-1 on
// disk). Chunks with a bad CRC or undecodable data are skipped; a file that is not a PNG is an error.
TextChunks read_png_text(const uint8_t* data, size_t size, const std::string& source);
TextChunks read_png_text(const std::filesystem::path& path);

// Text metadata of any supported format: PNG text chunks; for JPEG/WebP the EXIF UserComment (where
// AUTOMATIC1111 stores its infotext) as "parameters", plus JPEG COM segments as "comment".
TextChunks read_image_text(const uint8_t* data, size_t size, const std::string& source);

// Format and dimensions from the header alone (no pixel decoding).
struct ImageHeader {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0;
  int height = 0;
};
ImageHeader probe_image(const uint8_t* data, size_t size, const std::string& source);

// Resampling like PIL's Image.resize (separable convolution, filter support scaled when
// downsampling, 8-bit fixed-point accumulation), so resized init images and masks match what
// diffusers' VaeImageProcessor (PIL LANCZOS by default) feeds the model. RGBA is resampled per channel
// without PIL's alpha premultiplication.
// How a mask image marks the area to repaint (see mask_to_tensor in image_tensor.hpp).
enum class MaskConvention {
  WhiteRepaints,        // AUTOMATIC1111 / diffusers: grayscale (PIL "L"), white = repaint, black = keep
  TransparentRepaints,  // OpenAI image edits: alpha 0 = repaint, opaque = keep (needs an alpha channel)
};

enum class ResizeFilter { Bilinear, Bicubic, Lanczos };
Image resize_image(const Image& image, int width, int height, ResizeFilter filter = ResizeFilter::Lanczos);

// Pixel-exact geometric transforms used for EXIF orientation (1..8, TIFF semantics).
Image apply_exif_orientation(const Image& image, int orientation);

}  // namespace pictor

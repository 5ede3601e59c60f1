// Image codecs, PNG text, EXIF orientation, tensor conversions, A1111 infotext and `pictor info`.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fstream>

#include "core/error.hpp"
#include "formats/generation_params.hpp"
#include "formats/image.hpp"
#include "formats/image_tensor.hpp"
#include "image_samples.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using namespace pictor;
namespace s = pictor::samples;

namespace {

Image pattern_image(int w, int h, int channels) {
  Image img(w, h, channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c) img.at(x, y)[c] = uint8_t((x * 37 + y * 11 + c * 71) & 0xff);
  return img;
}

// Large flat colour blocks survive lossy codecs within a small tolerance.
Image blocks_image(int w, int h) {
  Image img(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.at(x, y);
      bool left = x < w / 2, top = y < h / 2;
      p[0] = left ? 220 : 20;
      p[1] = top ? 200 : 40;
      p[2] = left == top ? 30 : 180;
    }
  return img;
}

Image decode(const std::vector<uint8_t>& bytes, const ImageLimits& limits = {}) {
  return decode_image(bytes.data(), bytes.size(), "sample", limits);
}

// Runs `fn` and returns the pictor::Error message (fails the test when nothing is thrown).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no pictor::Error thrown";
  return {};
}

void write_file(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace

// ---- Codecs -------------------------------------------------------------------------------------

TEST(ImageCodec, PngRoundTripIsLosslessForRgbAndRgba) {
  for (int ch : {3, 4}) {
    Image img = pattern_image(17, 9, ch);
    auto bytes = encode_png(img);
    EXPECT_EQ(detect_image_format(bytes.data(), bytes.size()), ImageFormat::Png);
    Image back = decode(bytes);
    EXPECT_EQ(back.channels, ch);
    EXPECT_EQ(back.pixels, img.pixels);
  }
}

TEST(ImageCodec, JpegRoundTripIsClose) {
  Image img = blocks_image(64, 48);
  auto bytes = encode_jpeg(img, 95);
  EXPECT_EQ(detect_image_format(bytes.data(), bytes.size()), ImageFormat::Jpeg);
  Image back = decode(bytes);
  EXPECT_EQ(back.channels, 3);
  // Chroma subsampling smears colour edges; away from them the blocks come back close.
  double total = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) total += std::abs(int(back.pixels[i]) - int(img.pixels[i]));
  EXPECT_LT(total / double(img.pixels.size()), 6.0);
  EXPECT_NEAR(back.at(8, 8)[0], 220, 4);
  EXPECT_NEAR(back.at(56, 40)[2], 30, 4);
  // Alpha is dropped when encoding JPEG.
  Image rgba = pattern_image(16, 16, 4);
  EXPECT_EQ(decode(encode_jpeg(rgba, 90)).channels, 3);
}

TEST(ImageCodec, WebpRoundTrip) {
  Image img = blocks_image(64, 48);
  auto lossy = encode_webp(img, 95);
  EXPECT_EQ(detect_image_format(lossy.data(), lossy.size()), ImageFormat::Webp);
  Image back = decode(lossy);
  EXPECT_EQ(back.channels, 3);
  EXPECT_NEAR(back.at(8, 8)[0], 220, 6);
  Image rgba = pattern_image(20, 10, 4);  // includes fully transparent pixels, whose RGB must survive
  Image exact = decode(encode_webp(rgba, 100, /*lossless=*/true));
  EXPECT_EQ(exact.channels, 4);
  EXPECT_EQ(exact.pixels, rgba.pixels);
}

TEST(ImageCodec, PngVariantsAreNormalisedTo8BitRgbOrRgba) {
  {  // 8-bit gray -> RGB
    s::PngSpec sp;
    sp.color_type = PNG_COLOR_TYPE_GRAY;
    Image img = decode(s::make_png(sp, [](int x, int y, int) { return x * 30 + y; }));
    ASSERT_EQ(img.channels, 3);
    EXPECT_EQ(img.at(3, 2)[0], 92);
    EXPECT_EQ(img.at(3, 2)[1], 92);
    EXPECT_EQ(img.at(3, 2)[2], 92);
  }
  {  // 1-bit gray scales 1 -> 255
    s::PngSpec sp;
    sp.color_type = PNG_COLOR_TYPE_GRAY;
    sp.bit_depth = 1;
    Image img = decode(s::make_png(sp, [](int x, int, int) { return x & 1; }));
    EXPECT_EQ(img.at(0, 0)[0], 0);
    EXPECT_EQ(img.at(1, 0)[0], 255);
  }
  {  // 16-bit gray + alpha, interlaced -> RGBA, most significant byte kept (like PIL)
    s::PngSpec sp;
    sp.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    sp.bit_depth = 16;
    sp.interlaced = true;
    Image img = decode(s::make_png(sp, [](int x, int y, int c) { return c ? 0x8000 + y : 0x1234 * x + 0xff; }));
    ASSERT_EQ(img.channels, 4);
    EXPECT_EQ(img.at(2, 1)[0], (0x1234 * 2 + 0xff) >> 8);
    EXPECT_EQ(img.at(2, 1)[3], 0x80);
  }
  {  // 16-bit RGB -> RGB
    s::PngSpec sp;
    sp.bit_depth = 16;
    Image img = decode(s::make_png(sp, [](int x, int, int c) { return (x + 1) * 4000 + c * 256; }));
    ASSERT_EQ(img.channels, 3);
    EXPECT_EQ(img.at(4, 0)[1], (5 * 4000 + 256) >> 8);
  }
  {  // 2-bit palette with tRNS -> RGBA
    s::PngSpec sp;
    sp.color_type = PNG_COLOR_TYPE_PALETTE;
    sp.bit_depth = 2;
    sp.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 8, 7}};
    sp.palette_alpha = {255, 128, 0};
    Image img = decode(s::make_png(sp, [](int x, int, int) { return x % 4; }));
    ASSERT_EQ(img.channels, 4);
    const uint8_t want1[4] = {0, 255, 0, 128}, want3[4] = {9, 8, 7, 255};
    EXPECT_EQ(std::memcmp(img.at(1, 0), want1, 4), 0);
    EXPECT_EQ(std::memcmp(img.at(3, 5), want3, 4), 0);
  }
  {  // 8-bit palette without tRNS -> RGB
    s::PngSpec sp;
    sp.color_type = PNG_COLOR_TYPE_PALETTE;
    sp.palette = {{1, 2, 3}, {4, 5, 6}};
    Image img = decode(s::make_png(sp, [](int x, int y, int) { return (x + y) % 2; }));
    ASSERT_EQ(img.channels, 3);
    EXPECT_EQ(img.at(1, 0)[2], 6);
  }
  {  // RGB with a tRNS colour key -> RGBA, that colour transparent
    s::PngSpec sp;
    sp.trns_color = true;
    sp.trns_value.red = 10;
    sp.trns_value.green = 20;
    sp.trns_value.blue = 30;
    Image img = decode(s::make_png(sp, [](int x, int, int c) { return x == 0 ? 10 * (c + 1) : 99; }));
    ASSERT_EQ(img.channels, 4);
    EXPECT_EQ(img.at(0, 0)[3], 0);
    EXPECT_EQ(img.at(1, 0)[3], 255);
  }
  {  // interlaced RGB decodes to the same pixels as non-interlaced
    s::PngSpec a, b;
    b.interlaced = true;
    auto f = [](int x, int y, int c) { return (x * 31 + y * 7 + c) & 0xff; };
    EXPECT_EQ(decode(s::make_png(a, f)).pixels, decode(s::make_png(b, f)).pixels);
  }
}

// ---- Errors -------------------------------------------------------------------------------------

TEST(ImageErrors, EmptyGarbageAndMissingFilesAreClearErrors) {
  EXPECT_NE(error_of([] { decode_image(nullptr, 0, "empty.png"); }).find("empty.png': file is empty"),
            std::string::npos);
  std::vector<uint8_t> junk = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'};
  std::string msg = error_of([&] { decode_image(junk.data(), junk.size(), "notes.txt"); });
  EXPECT_NE(msg.find("notes.txt"), std::string::npos);
  EXPECT_NE(msg.find("not a PNG, JPEG or WebP"), std::string::npos);
  EXPECT_NE(error_of([] { read_image("/nonexistent/x.png"); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([] { read_image(fs::temp_directory_path()); }).find("directory"), std::string::npos);
}

TEST(ImageErrors, TruncatedFilesOfEveryFormatAreRejected) {
  Image img = pattern_image(40, 30, 3);
  for (auto bytes : {encode_png(img), encode_jpeg(img, 90), encode_webp(img, 90)}) {
    for (size_t keep : {bytes.size() / 2, bytes.size() - 3, size_t(20), size_t(9)}) {
      std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(keep));
      std::string msg = error_of([&] { decode_image(cut.data(), cut.size(), "cut.img"); });
      EXPECT_NE(msg.find("cut.img"), std::string::npos) << msg;
    }
  }
}

TEST(ImageErrors, CorruptPngDataIsAnError) {
  auto bytes = encode_png(pattern_image(40, 30, 3));
  for (size_t i = 60; i < bytes.size() - 20; i += 7) bytes[i] ^= 0x5a;  // inside IDAT: CRC and zlib break
  EXPECT_NE(error_of([&] { decode(bytes); }).find("invalid PNG"), std::string::npos);
}

TEST(ImageErrors, DecompressionBombHeadersAreRefusedBeforeDecoding) {
  auto bomb = s::png_with_claimed_size(100000, 100000);
  std::string msg = error_of([&] { decode_image(bomb.data(), bomb.size(), "bomb.png"); });
  EXPECT_NE(msg.find("bomb.png"), std::string::npos);
  EXPECT_NE(msg.find("100000x100000"), std::string::npos);
  EXPECT_NE(msg.find("over the limit"), std::string::npos);
  // JPEG: patch the frame header of a real file to claim 60000x60000.
  auto jpeg = encode_jpeg(pattern_image(16, 16, 3), 90);
  for (size_t i = 2; i + 9 < jpeg.size(); ++i)
    if (jpeg[i] == 0xff && jpeg[i + 1] == 0xc0) {
      jpeg[i + 5] = 0xea, jpeg[i + 6] = 0x60, jpeg[i + 7] = 0xea, jpeg[i + 8] = 0x60;
      break;
    }
  EXPECT_NE(error_of([&] { decode(jpeg); }).find("60000x60000"), std::string::npos);
  // Custom limits apply to every format, pixels and bytes.
  ImageLimits tiny;
  tiny.max_pixels = 100;
  auto webp = encode_webp(pattern_image(16, 16, 3), 80);
  EXPECT_NE(error_of([&] { decode(webp, tiny); }).find("over the limit of 100 pixels"), std::string::npos);
  ImageLimits few_bytes;
  few_bytes.max_bytes = 10;
  EXPECT_NE(error_of([&] { decode(webp, few_bytes); }).find("over the limit of 10 bytes"), std::string::npos);
}

TEST(ImageErrors, PrefixesAndMutationsNeverCrash) {
  // Every prefix and many single-byte corruptions of a small PNG/JPEG/WebP either decode or throw.
  Image img = pattern_image(9, 7, 4);
  for (auto bytes : {encode_png(img), encode_jpeg(img, 80), encode_webp(img, 80)}) {
    for (size_t n = 0; n <= bytes.size(); n += 3) {
      try {
        decode_image(bytes.data(), n, "prefix");
      } catch (const Error&) {
      }
    }
    for (size_t i = 0; i < bytes.size(); i += 5) {
      auto b = bytes;
      b[i] = uint8_t(b[i] + 97);
      try {
        Image out = decode_image(b.data(), b.size(), "mutated");
        EXPECT_EQ(out.pixels.size(), size_t(out.width) * size_t(out.height) * size_t(out.channels));
      } catch (const Error&) {
      }
    }
  }
}

// ---- Metadata -------------------------------------------------------------------------------------

TEST(ImageText, PngTextChunksRoundTripIncludingUtf8AndZtxt) {
  Image img = pattern_image(8, 8, 3);
  TextChunks text = {{"parameters", "a cat, sitting\nNegative prompt: dog\nSteps: 20, Seed: 1, Size: 8x8"},
                     {"Comment", "caf\xc3\xa9 \xe2\x98\x95"}};  // non-ASCII -> iTXt
  fs::path p = test::temp_dir("png-text") / "t.png";
  write_png(p, img, text);
  EXPECT_EQ(read_png_text(p), text);
  EXPECT_EQ(read_image(p).pixels, img.pixels);

  s::PngSpec sp;
  sp.text = {{"Title", "caf\xe9"}};  // Latin-1 in tEXt -> UTF-8
  sp.ztext = {{"parameters", "zipped prompt, Steps: 3, Seed: 4, Size: 8x6"}};
  auto bytes = s::make_png(sp, [](int, int, int) { return 7; });
  TextChunks got = read_png_text(bytes.data(), bytes.size(), "z.png");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (std::pair<std::string, std::string>{"Title", "caf\xc3\xa9"}));
  EXPECT_EQ(got[1].second, "zipped prompt, Steps: 3, Seed: 4, Size: 8x6");

  EXPECT_NE(error_of([&] { encode_png(img, {{"", "x"}}); }).find("key"), std::string::npos);
  EXPECT_NE(error_of([&] { encode_png(img, {{std::string(80, 'k'), "x"}}); }).find("1-79"), std::string::npos);
  auto jpeg = encode_jpeg(img, 90);
  EXPECT_NE(error_of([&] { read_png_text(jpeg.data(), jpeg.size(), "x.jpg"); }).find("not a PNG"), std::string::npos);
}

TEST(ImageExif, JpegOrientation6RotatesClockwise) {
  // 32x16: left half red, right half blue. Orientation 6 = rotate 90 degrees clockwise for display,
  // so the result is 16x32 with red on top and blue below.
  Image img(32, 16, 3);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 32; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = x < 16 ? 230 : 10;
      p[1] = 10;
      p[2] = x < 16 ? 10 : 230;
    }
  for (bool big_endian : {true, false}) {
    auto jpeg = s::jpeg_with_app1(encode_jpeg(img, 95), s::exif_payload(6, "", big_endian));
    Image out = decode(jpeg);
    ASSERT_EQ(out.width, 16);
    ASSERT_EQ(out.height, 32);
    EXPECT_GT(out.at(8, 4)[0], 200);
    EXPECT_LT(out.at(8, 4)[2], 50);
    EXPECT_GT(out.at(8, 28)[2], 200);
  }
  // Orientation 1 (and a missing EXIF block) leaves the image alone.
  EXPECT_EQ(decode(s::jpeg_with_app1(encode_jpeg(img, 95), s::exif_payload(1, ""))).width, 32);
}

TEST(ImageExif, AllEightOrientationsMatchTheirDefinitions) {
  // 3x2 image with distinct pixels; check where the top-left source pixel lands.
  Image img(3, 2, 3);
  for (int i = 0; i < 18; ++i) img.pixels[size_t(i)] = uint8_t(i);
  struct Case {
    int orientation, w, h, x, y;  // destination of source pixel (0,0)
  } cases[] = {{1, 3, 2, 0, 0}, {2, 3, 2, 2, 0}, {3, 3, 2, 2, 1}, {4, 3, 2, 0, 1},
               {5, 2, 3, 0, 0}, {6, 2, 3, 1, 0}, {7, 2, 3, 1, 2}, {8, 2, 3, 0, 2}};
  for (const auto& c : cases) {
    Image out = apply_exif_orientation(img, c.orientation);
    ASSERT_EQ(out.width, c.w) << c.orientation;
    ASSERT_EQ(out.height, c.h) << c.orientation;
    EXPECT_EQ(out.at(c.x, c.y)[0], 0) << c.orientation;
  }
  // Rotating clockwise (6) then counter-clockwise (8) is the identity.
  EXPECT_EQ(apply_exif_orientation(apply_exif_orientation(img, 6), 8).pixels, img.pixels);
}

TEST(ImageExif, JpegUserCommentAndCommentAreReadAsText) {
  const std::string info = "a dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 32x16";
  auto jpeg = s::jpeg_with_app1(encode_jpeg(pattern_image(32, 16, 3), 90), s::exif_payload(1, info));
  TextChunks text = read_image_text(jpeg.data(), jpeg.size(), "c.jpg");
  ASSERT_EQ(text.size(), 1u);
  EXPECT_EQ(text[0].first, "parameters");
  EXPECT_EQ(text[0].second, info);
  ImageHeader h = probe_image(jpeg.data(), jpeg.size(), "c.jpg");
  EXPECT_EQ(h.format, ImageFormat::Jpeg);
  EXPECT_EQ(h.width, 32);
  EXPECT_EQ(h.height, 16);
}

// ---- Resizing -------------------------------------------------------------------------------------

TEST(ImageResize, MatchesPilArithmetic) {
  // PIL: Image.frombytes("L", (2,1), bytes([0,255])).resize((4,1), BILINEAR) -> [0, 64, 191, 255].
  Image img(2, 1, 3);
  for (int c = 0; c < 3; ++c) img.at(0, 0)[c] = 0, img.at(1, 0)[c] = 255;
  Image up = resize_image(img, 4, 1, ResizeFilter::Bilinear);
  EXPECT_EQ(up.at(0, 0)[0], 0);
  EXPECT_EQ(up.at(1, 0)[0], 64);
  EXPECT_EQ(up.at(2, 0)[0], 191);
  EXPECT_EQ(up.at(3, 0)[0], 255);
  // Constant images stay constant under every filter, up and down.
  Image flat(13, 7, 4);
  std::fill(flat.pixels.begin(), flat.pixels.end(), uint8_t(77));
  for (auto f : {ResizeFilter::Bilinear, ResizeFilter::Bicubic, ResizeFilter::Lanczos})
    for (auto [w, h] : {std::pair{5, 3}, std::pair{31, 20}}) {
      Image r = resize_image(flat, w, h, f);
      EXPECT_EQ(r.width, w);
      EXPECT_EQ(r.channels, 4);
      for (uint8_t v : r.pixels) ASSERT_EQ(v, 77);
    }
  // Downscaling a 1-pixel checkerboard by 2 averages it (antialiasing), unlike point sampling.
  Image checker(16, 16, 3);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x) std::memset(checker.at(x, y), (x + y) % 2 ? 255 : 0, 3);
  Image half = resize_image(checker, 8, 8, ResizeFilter::Lanczos);
  EXPECT_NEAR(half.at(4, 4)[0], 128, 2);
  EXPECT_EQ(resize_image(checker, 16, 16).pixels, checker.pixels);
  EXPECT_NE(error_of([&] { resize_image(checker, 0, 5); }).find("1..65536"), std::string::npos);
}

// ---- Tensors --------------------------------------------------------------------------------------

TEST(ImageTensor, ImageToTensorNormalisesLikeDiffusers) {
  Image img(256, 1, 4);
  for (int x = 0; x < 256; ++x) img.at(x, 0)[0] = img.at(x, 0)[1] = img.at(x, 0)[2] = img.at(x, 0)[3] = uint8_t(x);
  at::Tensor t = image_to_tensor(img);
  ASSERT_EQ(t.sizes(), (at::IntArrayRef{1, 3, 1, 256}));
  EXPECT_EQ(t.scalar_type(), at::kFloat);
  auto a = t.accessor<float, 4>();
  EXPECT_EQ(a[0][0][0][0], -1.0f);
  EXPECT_EQ(a[0][2][0][255], 1.0f);
  EXPECT_EQ(a[0][1][0][128], 2.0f * (128.0f / 255.0f) - 1.0f);
  // Round trip through the pipeline's [-1,1] -> [0,1] -> uint8 path is exact for every value.
  Image back = tensor_to_image(denormalize(t));
  EXPECT_EQ(back.channels, 3);
  for (int x = 0; x < 256; ++x) ASSERT_EQ(back.at(x, 0)[0], x);
}

TEST(ImageTensor, TensorToImageRoundsLikeNumpyToPil) {
  at::Tensor t = at::tensor({0.5f, 1.0f, 1.5f, -0.2f, 0.0f, 0.25f}).reshape({3, 1, 2});
  Image img = tensor_to_image(t);
  ASSERT_EQ(img.width, 2);
  ASSERT_EQ(img.height, 1);
  EXPECT_EQ(img.at(0, 0)[0], 128);  // 127.5 rounds half to even
  EXPECT_EQ(img.at(1, 0)[0], 255);
  EXPECT_EQ(img.at(0, 0)[1], 255);  // clamped
  EXPECT_EQ(img.at(1, 0)[1], 0);    // clamped
  EXPECT_EQ(img.at(1, 0)[2], 64);   // 63.75
  EXPECT_EQ(tensor_to_image(t.unsqueeze(0).to(at::kDouble)).pixels, img.pixels);
  EXPECT_NE(error_of([] { tensor_to_image(at::zeros({2, 4, 4})); }).find("[3,H,W]"), std::string::npos);
}

TEST(ImageTensor, MaskConventions) {
  Image mask(3, 1, 4);
  const uint8_t px[3][4] = {{255, 255, 255, 0}, {0, 0, 0, 255}, {255, 0, 0, 128}};
  for (int x = 0; x < 3; ++x) std::memcpy(mask.at(x, 0), px[x], 4);
  at::Tensor white = mask_to_tensor(mask, MaskConvention::WhiteRepaints);
  ASSERT_EQ(white.sizes(), (at::IntArrayRef{1, 1, 1, 3}));
  auto w = white.accessor<float, 4>();
  EXPECT_EQ(w[0][0][0][0], 1.0f);
  EXPECT_EQ(w[0][0][0][1], 0.0f);
  EXPECT_EQ(w[0][0][0][2], 76.0f / 255.0f);  // PIL's L of pure red
  at::Tensor transparent = mask_to_tensor(mask, MaskConvention::TransparentRepaints);
  auto tr = transparent.accessor<float, 4>();
  EXPECT_EQ(tr[0][0][0][0], 1.0f);
  EXPECT_EQ(tr[0][0][0][1], 0.0f);
  EXPECT_NEAR(tr[0][0][0][2], 1.0f - 128.0f / 255.0f, 1e-6);
  at::Tensor bin = binarize_mask(white);
  EXPECT_EQ(bin.sum().item<float>(), 1.0f);
  Image rgb(2, 2, 3);
  EXPECT_NE(error_of([&] { mask_to_tensor(rgb, MaskConvention::TransparentRepaints); }).find("alpha"),
            std::string::npos);
  at::Tensor r = resize_tensor(white, 4, 6);
  EXPECT_EQ(r.sizes(), (at::IntArrayRef{1, 1, 4, 6}));
  EXPECT_NEAR(resize_tensor(at::ones({1, 3, 8, 8}), 3, 5, TensorResize::Bicubic).min().item<float>(), 1.0f, 1e-5);
}

// ---- A1111 infotext ---------------------------------------------------------------------------------

TEST(GenerationParams, FormatsExactlyLikeA1111) {
  GenerationParams p;
  p.prompt = "a photo of a cat";
  p.negative_prompt = "blurry, low quality";
  p.steps = 20;
  p.sampler = "Euler a";
  p.cfg_scale = 7;
  p.seed = 123;
  p.width = 512;
  p.height = 768;
  p.model_hash = "6ce0161689";
  p.model = "v1-5-pruned-emaonly";
  EXPECT_EQ(format_a1111(p),
            "a photo of a cat\nNegative prompt: blurry, low quality\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
            "Seed: 123, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly");
  p.negative_prompt.clear();
  p.cfg_scale = 7.5;
  p.denoising_strength = 0.75;
  p.extra["Clip skip"] = "2";
  p.extra["Lora hashes"] = "detail: abc, style: def";  // contains ',' and ':' -> JSON-quoted
  EXPECT_EQ(format_a1111(p),
            "a photo of a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 123, Size: 512x768, Model hash: "
            "6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.75, Clip skip: 2, Lora hashes: "
            "\"detail: abc, style: def\"");
}

TEST(GenerationParams, ParsesA1111Docstring) {
  GenerationParams p = parse_a1111(
      "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow)), (coquettish), detailed\n"
      "Negative prompt: ugly, fat, (((deformed))), [blurry], bad anatomy\n"
      "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b");
  EXPECT_EQ(p.prompt,
            "girl with an artist's beret, determined, blue eyes, desert scene, ((eyeshadow)), (coquettish), detailed");
  EXPECT_EQ(p.negative_prompt, "ugly, fat, (((deformed))), [blurry], bad anatomy");
  EXPECT_EQ(p.steps, 20);
  EXPECT_EQ(p.sampler, "Euler a");
  EXPECT_EQ(p.cfg_scale, 7.0);
  EXPECT_EQ(p.seed, 965400086u);
  EXPECT_EQ(p.width, 512);
  EXPECT_EQ(p.height, 512);
  EXPECT_EQ(p.model_hash, "45dee52b");
  EXPECT_TRUE(p.extra.empty());
}

TEST(GenerationParams, ParsingIsRobust) {
  // Multi-line prompt and negative prompt, quoted values with escapes, unknown keys.
  GenerationParams p = parse_a1111(
      "  line one\nline two: with colon, and comma\nNegative prompt: neg one\nneg two\n"
      "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5.5, Seed: 42, Size: 640x384, "
      "Template: \"say \\\"hi\\\", then\\nbye\", Schedule type: Karras, Version: v1.10.1  \n");
  EXPECT_EQ(p.prompt, "line one\nline two: with colon, and comma");
  EXPECT_EQ(p.negative_prompt, "neg one\nneg two");
  EXPECT_EQ(p.steps, 30);
  EXPECT_EQ(p.sampler, "DPM++ 2M Karras");
  EXPECT_EQ(p.cfg_scale, 5.5);
  EXPECT_EQ(p.width, 640);
  EXPECT_EQ(p.height, 384);
  EXPECT_EQ(p.extra.at("Template"), "say \"hi\", then\nbye");
  EXPECT_EQ(p.extra.at("Schedule type"), "Karras");
  EXPECT_EQ(p.extra.at("Version"), "v1.10.1");
  // A last line with fewer than 3 pairs is prompt text, not parameters.
  GenerationParams q = parse_a1111("just a prompt\nwith style: watercolor");
  EXPECT_EQ(q.prompt, "just a prompt\nwith style: watercolor");
  EXPECT_EQ(q.steps, 0);
  // Bad values stay in extra; missing fields keep defaults.
  GenerationParams r = parse_a1111("x\nSteps: many, Seed: -1, Size: big, Sampler: Euler");
  EXPECT_EQ(r.extra.at("Steps"), "many");
  EXPECT_EQ(r.extra.at("Seed"), "-1");
  EXPECT_EQ(r.extra.at("Size"), "big");
  EXPECT_EQ(r.sampler, "Euler");
  EXPECT_EQ(r.width, 0);
  EXPECT_FALSE(r.denoising_strength.has_value());
  EXPECT_EQ(parse_a1111("").prompt, "");
  EXPECT_EQ(parse_a1111("\n\n").steps, 0);
}

TEST(GenerationParams, RoundTrips) {
  GenerationParams p;
  p.prompt = "a castle, \"quoted\"\nsecond line";
  p.negative_prompt = "fog\nrain";
  p.steps = 4;
  p.sampler = "LCM";
  p.cfg_scale = 1.5;
  p.seed = 4294967294ull;
  p.width = 1024;
  p.height = 576;
  p.model = "sd_xl_base_1.0";
  p.denoising_strength = 0.3;
  p.extra = {{"Clip skip", "2"}, {"Note", "a, b: c\nd \\ e"}, {"Emoji", "\xf0\x9f\x98\x80, ok"}};
  GenerationParams q = parse_a1111(format_a1111(p));
  EXPECT_EQ(q.prompt, p.prompt);
  EXPECT_EQ(q.negative_prompt, p.negative_prompt);
  EXPECT_EQ(q.steps, p.steps);
  EXPECT_EQ(q.sampler, p.sampler);
  EXPECT_EQ(q.cfg_scale, p.cfg_scale);
  EXPECT_EQ(q.seed, p.seed);
  EXPECT_EQ(q.width, p.width);
  EXPECT_EQ(q.height, p.height);
  EXPECT_EQ(q.model, p.model);
  EXPECT_EQ(q.denoising_strength, p.denoising_strength);
  EXPECT_EQ(q.extra, p.extra);
  EXPECT_EQ(format_a1111(q), format_a1111(p));
}

TEST(GenerationParams, NumbersAndSamplerNames) {
  EXPECT_EQ(a1111_number(7), "7");
  EXPECT_EQ(a1111_number(7.5), "7.5");
  EXPECT_EQ(a1111_number(0.75), "0.75");
  EXPECT_EQ(a1111_number(0.1), "0.1");
  EXPECT_EQ(a1111_number(-1), "-1");
  EXPECT_EQ(a1111_sampler_name("EulerDiscreteScheduler"), "Euler");
  EXPECT_EQ(a1111_sampler_name("EulerAncestralDiscreteScheduler"), "Euler a");
  EXPECT_EQ(a1111_sampler_name("DPMSolverMultistepScheduler"), "DPM++ 2M");
  EXPECT_EQ(a1111_sampler_name("DPMSolverMultistepScheduler", true), "DPM++ 2M Karras");
  EXPECT_EQ(a1111_sampler_name("DDIMScheduler", true), "DDIM");
  EXPECT_EQ(a1111_sampler_name("LCMScheduler"), "LCM");
  EXPECT_EQ(a1111_sampler_name("FooScheduler"), "FooScheduler");
  EXPECT_EQ(a1111_quote("plain"), "plain");
  EXPECT_EQ(a1111_quote("a:b"), "\"a:b\"");
  EXPECT_EQ(a1111_unquote("\"not json"), "\"not json");
}

// ---- CLI --------------------------------------------------------------------------------------------

TEST(InfoCommand, PrintsFormatSizeAndParameters) {
  fs::path dir = test::temp_dir("info");
  GenerationParams p;
  p.prompt = "a red fox";
  p.steps = 20;
  p.sampler = "Euler a";
  p.cfg_scale = 7;
  p.seed = 99;
  p.width = 12;
  p.height = 8;
  write_png(dir / "fox.png", pattern_image(12, 8, 4), {{"parameters", format_a1111(p)}, {"Software", "Pictor"}});
  std::string out;
  ASSERT_EQ(test::run_cli("info " + (dir / "fox.png").string(), &out), 0) << out;
  EXPECT_NE(out.find("format: PNG"), std::string::npos) << out;
  EXPECT_NE(out.find("size: 12x8"), std::string::npos) << out;
  EXPECT_NE(out.find("mode: RGBA"), std::string::npos) << out;
  EXPECT_NE(out.find("Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 99, Size: 12x8"), std::string::npos) << out;
  EXPECT_NE(out.find("Software: Pictor"), std::string::npos) << out;

  ASSERT_EQ(test::run_cli("info --json " + (dir / "fox.png").string(), &out), 0) << out;
  EXPECT_NE(out.find("\"seed\": 99"), std::string::npos) << out;

  write_file(dir / "photo.jpg", encode_jpeg(pattern_image(10, 6, 3), 90));
  ASSERT_EQ(test::run_cli("info " + (dir / "photo.jpg").string(), &out), 0) << out;
  EXPECT_NE(out.find("format: JPEG"), std::string::npos) << out;
  EXPECT_NE(out.find("size: 10x6"), std::string::npos) << out;

  std::ofstream(dir / "notes.txt") << "not an image";
  EXPECT_EQ(test::run_cli("info " + (dir / "notes.txt").string(), &out), 1);
  EXPECT_NE(out.find("not a PNG, JPEG or WebP"), std::string::npos) << out;
  EXPECT_EQ(test::run_cli("info " + (dir / "missing.png").string(), &out), 1);
  EXPECT_NE(out.find("cannot open"), std::string::npos) << out;
}

// Regression (found by the image fuzzer): a chunk whose declared length runs past the end of the file
// made libpng allocate that length up front (2 GB from an 860-byte file); it is refused before decoding.
TEST(ImageDecode, PngChunkClaimingMoreThanTheFileIsRefused) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0x7e, 0x00, 0x00, 0x00,
                              'i',  'C', 'C', 'P', 1,    2,    3,    4,    5,    6,    7,    8};
  try {
    pictor::decode_image(png.data(), png.size(), "huge-chunk.png");
    FAIL() << "accepted";
  } catch (const pictor::Error& e) {
    EXPECT_NE(std::string(e.what()).find("claims"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("huge-chunk.png"), std::string::npos) << e.what();
  }
}

// Image <-> ATen tensor conversions (see image_tensor.hpp for the diffusers/PIL formulas matched).
#include "formats/image_tensor.hpp"

#include <ATen/ATen.h>

#include <array>
#include <cstring>

#include "core/error.hpp"

namespace pictor {
namespace {

void check_image(const Image& image, const char* what) {
  if (image.width <= 0 || image.height <= 0 || (image.channels != 3 && image.channels != 4) ||
      image.pixels.size() != size_t(image.width) * size_t(image.height) * size_t(image.channels))
    throw Error(std::string(what) + ": image must be non-empty RGB or RGBA with width*height*channels bytes");
}

// [H,W,C] uint8 view of the pixels (no copy; the caller copies before the image goes away).
at::Tensor hwc_view(const Image& image) {
  return at::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, image.channels},
                       at::TensorOptions().dtype(at::kByte));
}

}  // namespace

at::Tensor image_to_tensor(const Image& image) {
  check_image(image, "image_to_tensor");
  at::Tensor rgb = hwc_view(image).slice(2, 0, 3).permute({2, 0, 1}).to(at::kFloat);
  // Same order of float32 operations as numpy: x / 255.0, then 2.0 * x - 1.0.
  return (rgb.div(255.0f).mul(2.0f).sub(1.0f)).unsqueeze(0).contiguous();
}

at::Tensor denormalize(const at::Tensor& t) {
  return (t * 0.5 + 0.5).clamp(0, 1);
}

Image tensor_to_image(const at::Tensor& t_in) {
  at::Tensor t = t_in;
  if (t.dim() == 4 && t.size(0) == 1) t = t.squeeze(0);
  if (t.dim() != 3 || (t.size(0) != 3 && t.size(0) != 4) || t.size(1) <= 0 || t.size(2) <= 0)
    throw Error("tensor_to_image: expected a [3,H,W] or [1,3,H,W] tensor, got shape " + c10::str(t_in.sizes()));
  at::Tensor q = t.detach().to(at::kCPU, at::kFloat).clamp(0, 1).mul(255.0f).round().to(at::kByte);
  q = q.permute({1, 2, 0}).contiguous();
  Image image(int(q.size(1)), int(q.size(0)), int(q.size(2)));
  std::memcpy(image.pixels.data(), q.data_ptr<uint8_t>(), image.pixels.size());
  return image;
}

at::Tensor mask_to_tensor(const Image& mask, MaskConvention convention) {
  check_image(mask, "mask_to_tensor");
  at::Tensor px = hwc_view(mask).to(at::kInt);
  at::Tensor value;
  if (convention == MaskConvention::WhiteRepaints) {
    // PIL's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
    at::Tensor l =
        (px.select(2, 0) * 19595 + px.select(2, 1) * 38470 + px.select(2, 2) * 7471 + 0x8000).div(65536, "floor");
    value = l.to(at::kFloat).div(255.0f);
  } else {
    if (mask.channels != 4)
      throw Error(
          "mask image has no alpha channel: the transparent-repaints convention (OpenAI edits) needs an RGBA PNG "
          "whose transparent pixels mark the area to repaint");
    value = 1.0f - px.select(2, 3).to(at::kFloat).div(255.0f);
  }
  return value.unsqueeze(0).unsqueeze(0).contiguous();
}

at::Tensor binarize_mask(const at::Tensor& mask) {
  return (mask >= 0.5).to(mask.scalar_type());
}

at::Tensor resize_tensor(const at::Tensor& t, int64_t height, int64_t width, TensorResize mode) {
  if (t.dim() != 4) throw Error("resize_tensor: expected an [N,C,H,W] tensor, got shape " + c10::str(t.sizes()));
  if (height <= 0 || width <= 0)
    throw Error("resize_tensor: target size " + std::to_string(height) + "x" + std::to_string(width) +
                " must be positive");
  if (t.size(2) == height && t.size(3) == width) return t;
  const std::array<int64_t, 2> size{height, width};
  const at::IntArrayRef out_size(size);
  return mode == TensorResize::Bilinear ? at::_upsample_bilinear2d_aa(t, out_size, false)
                                        : at::_upsample_bicubic2d_aa(t, out_size, false);
}

}  // namespace pictor

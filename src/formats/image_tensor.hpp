#pragma once
// Conversions between 8-bit images and the float tensors the diffusion pipelines use, with the same
// arithmetic as diffusers' VaeImageProcessor / numpy_to_pil so outputs match bit for bit.
#include <ATen/core/Tensor.h>

#include "formats/image.hpp"

namespace pictor {

// [1,3,H,W] float32 in [-1,1]: (pixels / 255) * 2 - 1, as VaeImageProcessor.preprocess. Alpha is dropped.
at::Tensor image_to_tensor(const Image& image);

// [3,H,W] or [1,3,H,W] (any float dtype/device) in [0,1] -> 8-bit RGB, as diffusers' numpy_to_pil:
// (x * 255).round() in float32 (round half to even). Values are clamped to [0,1] first (diffusers
// clamps in postprocess; numpy's uint8 cast would wrap instead).
Image tensor_to_image(const at::Tensor& t);

// [-1,1] -> [0,1], as VaeImageProcessor.denormalize: (x * 0.5 + 0.5).clamp(0, 1).
at::Tensor denormalize(const at::Tensor& t);

// Which pixels of a mask image mean "repaint this".

// [1,1,H,W] float32 in [0,1], 1 = repaint. WhiteRepaints uses PIL's L conversion
// (R*299 + G*587 + B*114)/1000 in fixed point, then / 255; binarize_mask gives diffusers' 0/1 mask.
at::Tensor mask_to_tensor(const Image& mask, MaskConvention convention = MaskConvention::WhiteRepaints);
// diffusers' VaeImageProcessor.binarize: values < 0.5 -> 0, others -> 1.
at::Tensor binarize_mask(const at::Tensor& mask);

// Resizes an [N,C,H,W] float tensor with antialiased bilinear (or bicubic) interpolation
// (align_corners=false), e.g. for masks and latents. For init images prefer resize_image() on the
// 8-bit image, which reproduces PIL's LANCZOS exactly.
enum class TensorResize { Bilinear, Bicubic };
at::Tensor resize_tensor(const at::Tensor& t, int64_t height, int64_t width,
                         TensorResize mode = TensorResize::Bilinear);

}  // namespace pictor

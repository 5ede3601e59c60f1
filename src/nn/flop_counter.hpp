#pragma once
// Counts the floating-point operations of the heavy layers (linear, conv, attention matmuls) while
// enabled, so benchmarks report measured model FLOPs instead of hand-derived constants. One relaxed
// atomic add per layer call: negligible next to the layer itself.
#include <cstdint>

namespace pictor::nn {

class FlopCounter {
 public:
  // Starts counting from zero in this process.
  static void start();
  // Stops counting and returns the FLOPs (multiply and add counted separately) since start().
  static double stop();
  static bool enabled();
  static void add(double flops);
};

}  // namespace pictor::nn

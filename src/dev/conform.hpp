#pragma once
// Golden conformance: `pictor dev conform DIR` loads a case folder (case.json + inputs/outputs
// safetensors), finds the checker registered for its kind, recomputes every output and compares it
// with the recorded one. Checkers register themselves with PICTOR_REGISTER_CONFORM, so a new case of a
// known kind runs without code changes and a new kind is one new file.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/json_file.hpp"
#include "formats/tensor_store.hpp"

namespace pictor::dev {

// One case folder.
struct CaseDir {
  std::filesystem::path dir;
  json spec;            // case.json
  TensorStore inputs;   // inputs.safetensors (empty store when absent)
  TensorStore outputs;  // outputs.safetensors
  static CaseDir load(const std::filesystem::path& dir);
  // case.json tolerance[name].suggested_atol, or `fallback` when not given.
  double suggested_atol(const std::string& name, double fallback) const;
  // case.json recommended_tolerance_fp32 {atol, rtol} (the transformers goldens), default 1e-4 each.
  struct Tolerance {
    double atol, rtol;
  };
  Tolerance recommended_tolerance() const;
  // An integer argument that case.json's `calls[call]` gives only in prose ("eos_token_id=72").
  std::optional<int64_t> call_int_argument(const std::string& call, const std::string& arg) const;
};

struct CheckResult {
  std::string name;
  double max_abs_err = 0;
  double tolerance = 0;
  bool exact = false;  // integer comparison: must be equal
  bool pass = false;
  std::string note;
};

class ConformReport {
 public:
  // Float comparison: max |actual - expected| <= atol (shapes must match).
  void close(const std::string& name, const at::Tensor& actual, const at::Tensor& expected, double atol);
  // Float comparison with a relative term, as numpy.allclose: every |actual - expected| <= atol +
  // rtol * |expected| (the reported error is still the max absolute difference).
  void close_rel(const std::string& name, const at::Tensor& actual, const at::Tensor& expected, double atol,
                 double rtol);
  // Integer/exact comparison.
  void exact(const std::string& name, const at::Tensor& actual, const at::Tensor& expected);
  // A named boolean outcome (e.g. a string equal byte for byte).
  void check(const std::string& name, bool ok, const std::string& note = "");
  const std::vector<CheckResult>& results() const { return results_; }
  bool all_pass() const;
  int failures() const;
  std::string format() const;  // one line per check

 private:
  std::vector<CheckResult> results_;
};

using ConformMatcher = std::function<bool(const CaseDir&)>;
using ConformChecker = std::function<void(const CaseDir&, ConformReport&)>;

struct ConformKind {
  std::string name;
  ConformMatcher matches;
  ConformChecker run;
};

// Registers a checker; returns true so it can initialise a static.
bool register_conform_kind(ConformKind kind);
const std::vector<ConformKind>& conform_kinds();

// Runs the matching checker on `dir`. Throws Error if no registered kind matches.
ConformReport run_conform(const std::filesystem::path& dir, std::string* kind_out = nullptr);

// When on (`pictor dev conform --int8`), the language-model checkers (Llama, Idefics3, LLaVA) load the
// model with int8 linear layers (as `describe --int8` does), to measure that format's error against the fp32 goldens.
void set_conform_int8_decoder(bool on);
bool conform_int8_decoder();

// True when case.json's model.class ends with `cls` (e.g. "UNet2DConditionModel").
bool case_model_class_is(const CaseDir& c, const std::string& cls);
// True when case.json's "case" string contains `word`.
bool case_title_has(const CaseDir& c, const std::string& word);

}  // namespace pictor::dev

#define PICTOR_CONFORM_CAT2(a, b) a##b
#define PICTOR_CONFORM_CAT(a, b) PICTOR_CONFORM_CAT2(a, b)
// PICTOR_REGISTER_CONFORM("unet", matcher, checker) at namespace scope in a file of src/dev/.
#define PICTOR_REGISTER_CONFORM(NAME, MATCH, RUN)                              \
  static const bool PICTOR_CONFORM_CAT(pictor_conform_registered_, __LINE__) = \
      ::pictor::dev::register_conform_kind({NAME, MATCH, RUN})

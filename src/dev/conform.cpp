#include "dev/conform.hpp"

#include <ATen/ATen.h>

#include <cstdio>
#include <regex>
#include <sstream>

#include "core/error.hpp"

namespace fs = std::filesystem;

namespace pictor::dev {

CaseDir CaseDir::load(const fs::path& dir) {
  CaseDir c;
  c.dir = dir;
  if (!fs::is_directory(dir)) throw Error(dir.string() + ": case folder not found");
  if (!fs::exists(dir / "case.json")) throw Error(dir.string() + ": no case.json (not a golden case folder)");
  c.spec = read_json_file(dir / "case.json");
  if (fs::exists(dir / "inputs.safetensors")) c.inputs = TensorStore::open_file(dir / "inputs.safetensors");
  if (fs::exists(dir / "outputs.safetensors")) c.outputs = TensorStore::open_file(dir / "outputs.safetensors");
  return c;
}

double CaseDir::suggested_atol(const std::string& name, double fallback) const {
  if (spec.contains("tolerance") && spec["tolerance"].is_object() && spec["tolerance"].contains(name)) {
    const auto& t = spec["tolerance"][name];
    if (t.is_object() && t.contains("suggested_atol") && t["suggested_atol"].is_number())
      return t["suggested_atol"].get<double>();
  }
  return fallback;
}

CaseDir::Tolerance CaseDir::recommended_tolerance() const {
  Tolerance t{1e-4, 1e-4};
  if (spec.contains("recommended_tolerance_fp32") && spec["recommended_tolerance_fp32"].is_object()) {
    const auto& r = spec["recommended_tolerance_fp32"];
    t.atol = r.value("atol", t.atol);
    t.rtol = r.value("rtol", t.rtol);
  }
  return t;
}

std::optional<int64_t> CaseDir::call_int_argument(const std::string& call, const std::string& arg) const {
  if (!spec.contains("calls") || !spec["calls"].contains(call) || !spec["calls"][call].is_string()) return std::nullopt;
  const std::string text = spec["calls"][call].get<std::string>();
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(arg + "=(\\d+)"))) return std::nullopt;
  return std::stoll(m[1].str());
}

void ConformReport::close(const std::string& name, const at::Tensor& actual, const at::Tensor& expected, double atol) {
  CheckResult r{name, 0, atol, false, false, ""};
  if (!actual.defined()) {
    r.note = "not computed";
  } else if (actual.sizes() != expected.sizes()) {
    std::ostringstream s;
    s << "shape " << actual.sizes() << " != expected " << expected.sizes();
    r.note = s.str();
    r.max_abs_err = INFINITY;
  } else {
    at::Tensor d = (actual.detach().to(at::kCPU).to(at::kDouble) - expected.to(at::kDouble)).abs();
    r.max_abs_err = d.numel() ? d.max().item<double>() : 0.0;
    r.pass = r.max_abs_err <= atol;  // NaN fails
  }
  results_.push_back(r);
}

void ConformReport::close_rel(const std::string& name, const at::Tensor& actual, const at::Tensor& expected,
                              double atol, double rtol) {
  char rtol_note[32];
  std::snprintf(rtol_note, sizeof rtol_note, "rtol %.1e", rtol);
  CheckResult r{name, 0, atol, false, false, rtol_note};
  if (!actual.defined()) {
    r.note = "not computed";
  } else if (actual.sizes() != expected.sizes()) {
    std::ostringstream s;
    s << "shape " << actual.sizes() << " != expected " << expected.sizes();
    r.note = s.str();
    r.max_abs_err = INFINITY;
  } else {
    const at::Tensor e = expected.to(at::kDouble);
    const at::Tensor d = (actual.detach().to(at::kCPU).to(at::kDouble) - e).abs();
    r.max_abs_err = d.numel() ? d.max().item<double>() : 0.0;
    // Written as "not within" so NaN counts as a miss.
    const int64_t misses = d.numel() ? at::logical_not(d <= atol + rtol * e.abs()).sum().item<int64_t>() : 0;
    r.pass = misses == 0;
    if (misses) r.note += ", " + std::to_string(misses) + " of " + std::to_string(d.numel()) + " outside";
  }
  results_.push_back(r);
}

void ConformReport::exact(const std::string& name, const at::Tensor& actual, const at::Tensor& expected) {
  CheckResult r{name, 0, 0, true, false, ""};
  if (!actual.defined()) {
    r.note = "not computed";
  } else if (actual.sizes() != expected.sizes()) {
    std::ostringstream s;
    s << "shape " << actual.sizes() << " != expected " << expected.sizes();
    r.note = s.str();
    r.max_abs_err = INFINITY;
  } else {
    at::Tensor a = actual.detach().to(at::kCPU).to(at::kDouble), e = expected.to(at::kDouble);
    at::Tensor ne = a.ne(e);
    int64_t n = ne.sum().item<int64_t>();
    r.max_abs_err = a.numel() ? (a - e).abs().max().item<double>() : 0.0;
    r.pass = n == 0;
    if (n) r.note = std::to_string(n) + " of " + std::to_string(a.numel()) + " differ";
  }
  results_.push_back(r);
}

void ConformReport::check(const std::string& name, bool ok, const std::string& note) {
  results_.push_back({name, ok ? 0.0 : 1.0, 0.0, true, ok, note});
}

bool ConformReport::all_pass() const {
  return failures() == 0 && !results_.empty();
}

int ConformReport::failures() const {
  int n = 0;
  for (const auto& r : results_) n += r.pass ? 0 : 1;
  return n;
}

std::string ConformReport::format() const {
  std::ostringstream s;
  for (const auto& r : results_) {
    char line[512];
    if (r.exact)
      std::snprintf(line, sizeof line, "%s  %-48s exact%s%s\n", r.pass ? "ok  " : "FAIL", r.name.c_str(),
                    r.note.empty() ? "" : "  ", r.note.c_str());
    else
      std::snprintf(line, sizeof line, "%s  %-48s max_err %.3e  tol %.1e%s%s\n", r.pass ? "ok  " : "FAIL",
                    r.name.c_str(), r.max_abs_err, r.tolerance, r.note.empty() ? "" : "  ", r.note.c_str());
    s << line;
  }
  return s.str();
}

static std::vector<ConformKind>& registry() {
  static std::vector<ConformKind> kinds;
  return kinds;
}

bool register_conform_kind(ConformKind kind) {
  registry().push_back(std::move(kind));
  return true;
}

const std::vector<ConformKind>& conform_kinds() {
  return registry();
}

namespace {
bool g_int8_decoder = false;
}

void set_conform_int8_decoder(bool on) {
  g_int8_decoder = on;
}
bool conform_int8_decoder() {
  return g_int8_decoder;
}

ConformReport run_conform(const fs::path& dir, std::string* kind_out) {
  CaseDir c = CaseDir::load(dir);
  for (const auto& k : registry()) {
    if (!k.matches(c)) continue;
    if (kind_out) *kind_out = k.name;
    ConformReport rep;
    k.run(c, rep);
    return rep;
  }
  std::string known;
  for (const auto& k : registry()) known += " " + k.name;
  throw Error((dir / "case.json").string() + ": no conformance checker matches this case (known kinds:" + known + ")");
}

bool case_model_class_is(const CaseDir& c, const std::string& cls) {
  if (!c.spec.contains("model") || !c.spec["model"].is_object()) return false;
  const auto& m = c.spec["model"];
  if (!m.contains("class") || !m["class"].is_string()) return false;
  std::string s = m["class"].get<std::string>();
  return s.size() >= cls.size() && s.compare(s.size() - cls.size(), cls.size(), cls) == 0;
}

bool case_title_has(const CaseDir& c, const std::string& word) {
  return c.spec.contains("case") && c.spec["case"].is_string() &&
         c.spec["case"].get<std::string>().find(word) != std::string::npos;
}

}  // namespace pictor::dev

// AUTOMATIC1111 infotext formatting and parsing (see generation_params.hpp for the format).
#include "formats/generation_params.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace pictor {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
// Python's \w is Unicode-aware; bytes of multi-byte UTF-8 sequences stand in for non-ASCII letters.
bool is_word(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || u >= 0x80;
}
bool is_key_char(char c) {
  return is_word(c) || c == ' ' || c == '-' || c == '/';
}

std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (;;) {
    size_t nl = s.find('\n', start);
    lines.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return lines;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xc0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += char(0xe0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  } else {
    out += char(0xf0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3f));
    out += char(0x80 | ((cp >> 6) & 0x3f));
    out += char(0x80 | (cp & 0x3f));
  }
}

// A JSON string literal (with quotes) to UTF-8; false when it is not valid JSON.
bool json_unquote(const std::string& s, std::string* out) {
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
  auto hex4 = [&](size_t i, uint32_t* v) {
    if (i + 4 > s.size() - 1) return false;
    *v = 0;
    for (size_t k = i; k < i + 4; ++k) {
      char c = s[k];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return false;
      *v = *v << 4 | uint32_t(d);
    }
    return true;
  };
  out->clear();
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (c == '"' || static_cast<unsigned char>(c) < 0x20) return false;
    if (c != '\\') {
      *out += c;
      continue;
    }
    if (++i + 1 > s.size() - 1) return false;
    switch (s[i]) {
      case '"': *out += '"'; break;
      case '\\': *out += '\\'; break;
      case '/': *out += '/'; break;
      case 'b': *out += '\b'; break;
      case 'f': *out += '\f'; break;
      case 'n': *out += '\n'; break;
      case 'r': *out += '\r'; break;
      case 't': *out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < s.size() && s[i + 1] == '\\' && s[i + 2] == 'u') {
          uint32_t lo;
          if (hex4(i + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
          }
        }
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        append_utf8(*out, cp);
        break;
      }
      default: return false;
    }
  }
  return true;
}

template <typename T>
bool parse_number(const std::string& s, T* out) {
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if constexpr (std::is_floating_point_v<T>) {
    // from_chars does not accept a leading '+'; Python's float() does, and so do we.
    if (b != e && *b == '+') ++b;
  }
  auto [ptr, ec] = std::from_chars(b, e, *out);
  return ec == std::errc() && ptr == e && b != e;
}

bool parse_size(const std::string& v, int* w, int* h) {
  size_t x = v.find('x');
  if (x == std::string::npos || x == 0 || x + 1 >= v.size()) return false;
  for (size_t i = 0; i < v.size(); ++i)
    if (i != x && !std::isdigit(static_cast<unsigned char>(v[i]))) return false;
  return parse_number(v.substr(0, x), w) && parse_number(v.substr(x + 1), h);
}

}  // namespace

std::string a1111_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e16) {  // integral: printed like a Python int
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  double a = std::fabs(v);
  auto fmt = a >= 1e-4 && a < 1e16 ? std::chars_format::fixed : std::chars_format::scientific;
  auto res = std::to_chars(buf, buf + sizeof buf, v, fmt);
  return std::string(buf, res.ptr);
}

std::string a1111_quote(const std::string& value) {
  if (value.find_first_of(",\n:") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", static_cast<unsigned char>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string a1111_unquote(const std::string& value) {
  std::string out;
  return json_unquote(value, &out) ? out : value;
}

std::vector<std::pair<std::string, std::string>> a1111_find_params(const std::string& line) {
  std::vector<std::pair<std::string, std::string>> found;
  const size_t n = line.size();
  size_t pos = 0;
  while (pos < n) {
    // \s*(\w[\w \-/]+):\s*
    size_t p = pos;
    while (p < n && is_space(line[p])) ++p;
    size_t key_begin = p;
    if (p >= n || !is_word(line[p])) {
      ++pos;
      continue;
    }
    ++p;
    while (p < n && is_key_char(line[p])) ++p;
    if (p - key_begin < 2 || p >= n || line[p] != ':') {
      ++pos;
      continue;
    }
    std::string key = line.substr(key_begin, p - key_begin);
    ++p;
    while (p < n && is_space(line[p])) ++p;
    // ("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)
    size_t value_end = std::string::npos;
    if (p < n && line[p] == '"') {
      size_t q = p + 1;
      while (q < n && line[q] != '"') q += (line[q] == '\\' && q + 1 < n) ? 2 : 1;
      if (q < n && q > p + 1 && (q + 1 == n || line[q + 1] == ',')) value_end = q + 1;
    }
    if (value_end == std::string::npos) {
      value_end = line.find(',', p);
      if (value_end == std::string::npos) value_end = n;
    }
    found.emplace_back(std::move(key), line.substr(p, value_end - p));
    pos = value_end < n ? value_end + 1 : n;
  }
  return found;
}

GenerationParams parse_a1111(const std::string& text) {
  GenerationParams p;
  std::vector<std::string> lines = split_lines(strip(text));
  std::string last = lines.back();
  lines.pop_back();
  auto params = a1111_find_params(last);
  if (params.size() < 3) {
    lines.push_back(last);
    params.clear();
  }
  bool in_negative = false;
  for (std::string line : lines) {
    line = strip(line);
    if (line.rfind("Negative prompt:", 0) == 0) {
      in_negative = true;
      line = strip(line.substr(16));
    }
    std::string& dst = in_negative ? p.negative_prompt : p.prompt;
    dst += (dst.empty() ? "" : "\n") + line;
  }
  for (auto& [key, raw] : params) {
    // The last value of a line may carry a '\r' from CRLF text; A1111 would keep it, we do not.
    std::string value = raw.size() >= 2 && raw.front() == '"' && raw.back() == '"' ? a1111_unquote(raw) : strip(raw);
    bool ok = true;
    if (key == "Steps") {
      ok = parse_number(value, &p.steps);
    } else if (key == "Sampler") {
      p.sampler = value;
    } else if (key == "CFG scale") {
      ok = parse_number(value, &p.cfg_scale);
    } else if (key == "Seed") {
      ok = parse_number(value, &p.seed);
    } else if (key == "Size") {
      ok = parse_size(value, &p.width, &p.height);
    } else if (key == "Model") {
      p.model = value;
    } else if (key == "Model hash") {
      p.model_hash = value;
    } else if (key == "Denoising strength") {
      double d;
      ok = parse_number(value, &d);
      if (ok) p.denoising_strength = d;
    } else {
      ok = false;
    }
    if (!ok) p.extra[key] = value;
  }
  return p;
}

std::string format_a1111(const GenerationParams& p) {
  std::vector<std::pair<std::string, std::string>> kv;
  if (p.steps > 0) kv.emplace_back("Steps", std::to_string(p.steps));
  if (!p.sampler.empty()) kv.emplace_back("Sampler", p.sampler);
  kv.emplace_back("CFG scale", a1111_number(p.cfg_scale));
  kv.emplace_back("Seed", std::to_string(p.seed));
  if (p.width > 0 && p.height > 0) kv.emplace_back("Size", std::to_string(p.width) + "x" + std::to_string(p.height));
  if (!p.model_hash.empty()) kv.emplace_back("Model hash", p.model_hash);
  if (!p.model.empty()) kv.emplace_back("Model", p.model);
  if (p.denoising_strength) kv.emplace_back("Denoising strength", a1111_number(*p.denoising_strength));
  for (const auto& [k, v] : p.extra) kv.emplace_back(k, v);

  std::string line;
  for (const auto& [k, v] : kv) line += (line.empty() ? "" : ", ") + k + ": " + a1111_quote(v);
  std::string out = p.prompt;
  if (!p.negative_prompt.empty()) out += "\nNegative prompt: " + p.negative_prompt;
  return strip(out + "\n" + line);
}

std::string a1111_sampler_name(const std::string& cls, bool karras) {
  static const std::map<std::string, std::string> names = {
      {"EulerDiscreteScheduler", "Euler"},
      {"EulerAncestralDiscreteScheduler", "Euler a"},
      {"DPMSolverMultistepScheduler", "DPM++ 2M"},
      {"DPMSolverSinglestepScheduler", "DPM++ SDE"},
      {"KDPM2DiscreteScheduler", "DPM2"},
      {"KDPM2AncestralDiscreteScheduler", "DPM2 a"},
      {"HeunDiscreteScheduler", "Heun"},
      {"LMSDiscreteScheduler", "LMS"},
      {"DDIMScheduler", "DDIM"},
      {"PNDMScheduler", "PLMS"},
      {"LCMScheduler", "LCM"},
      {"UniPCMultistepScheduler", "UniPC"},
      {"DEISMultistepScheduler", "DEIS"},
  };
  auto it = names.find(cls);
  if (it == names.end()) return cls;
  // A1111 (before 1.9 split out "Schedule type") appended " Karras" to the k-diffusion samplers.
  bool k_sampler = it->second != "DDIM" && it->second != "PLMS" && it->second != "LCM" && it->second != "UniPC" &&
                   it->second != "DEIS";
  return karras && k_sampler ? it->second + " Karras" : it->second;
}

namespace {
const std::pair<const char*, const char*> kSamplerDisplay[] = {
    {"euler", "Euler"},
    {"euler_a", "Euler a"},
    {"euler_karras", "Euler Karras"},
    {"dpmpp_2m", "DPM++ 2M"},
    {"dpmpp_2m_karras", "DPM++ 2M Karras"},
    {"ddim", "DDIM"},
    {"lcm", "LCM"},
};
}  // namespace

std::string a1111_sampler_display(const std::string& pictor_sampler) {
  for (const auto& [name, display] : kSamplerDisplay)
    if (pictor_sampler == name) return display;
  return pictor_sampler;
}

std::string pictor_sampler_from_a1111(const std::string& display) {
  for (const auto& [name, shown] : kSamplerDisplay)
    if (display == shown) return name;
  return display;
}

}  // namespace pictor

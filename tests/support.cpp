#include "support.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace fs = std::filesystem;

namespace pictor::test {

static fs::path golden_root() {
  if (const char* g = std::getenv("PICTOR_GOLDEN"); g && *g) return g;
  return fs::path(PICTOR_SOURCE_DIR) / ".." / "shared" / "golden";
}

bool have_golden() {
  return fs::is_directory(golden_root());
}

fs::path golden_dir() {
  fs::path g = golden_root();
  if (!fs::is_directory(g))
    ADD_FAILURE() << "golden vectors not found at '" << g.string()
                  << "': set PICTOR_GOLDEN to the golden folder (../shared/golden beside the repo)";
  return g;
}

namespace {
struct TempRoot {
  fs::path root;
  TempRoot() {
    std::random_device rd;
    root = fs::temp_directory_path() / ("pictor-test-" + std::to_string(rd()));
    fs::create_directories(root);
  }
  ~TempRoot() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
};
}  // namespace

fs::path temp_dir(const std::string& tag) {
  static TempRoot root;
  static int n = 0;
  fs::path d = root.root / (tag + "-" + std::to_string(n++));
  fs::create_directories(d);
  return d;
}

std::string cli_path() {
  return PICTOR_CLI_PATH;
}

int run_cli(const std::string& args, std::string* output, const std::string& env) {
  std::string cmd = (env.empty() ? "" : "env " + env + " ") + cli_path() + " " + args + " 2>&1 </dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace pictor::test

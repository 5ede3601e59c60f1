#pragma once
// Helpers shared by the test executables.
#include <filesystem>
#include <string>

namespace pictor::test {

// Root of the golden vectors: $PICTOR_GOLDEN, else ../shared/golden beside the source tree. Fails the
// calling test with a clear message when the folder is absent.
std::filesystem::path golden_dir();
bool have_golden();

// A fresh empty temporary directory, removed at process exit.
std::filesystem::path temp_dir(const std::string& tag);

// Path of the built `pictor` CLI and a helper to run it, capturing stdout+stderr.
std::string cli_path();
// `env` is prefixed to the command line (e.g. "VAR=value OTHER=x").
int run_cli(const std::string& args, std::string* output = nullptr, const std::string& env = "");

}  // namespace pictor::test

#define PICTOR_REQUIRE_GOLDEN()                                                                  \
  do {                                                                                           \
    if (!::pictor::test::have_golden()) FAIL() << "golden vectors not found: set PICTOR_GOLDEN"; \
  } while (0)

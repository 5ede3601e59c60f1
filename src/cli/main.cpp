// `pictor`: the command-line front end. It only parses flags and calls libpictor.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.hpp"
#include "core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Pictor: self-hosted text-to-image and image-to-text engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pictor 0.1.0");
  pictor::cli::add_generate_command(app);
  pictor::cli::add_dev_commands(app);
  pictor::cli::add_info_command(app);
  pictor::cli::add_pull_command(app);
  pictor::cli::add_score_command(app);
  pictor::cli::add_describe_command(app);
  pictor::cli::add_serve_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const pictor::Error& e) {
    std::fprintf(stderr, "pictor: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pictor: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}

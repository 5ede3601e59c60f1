#pragma once
// Each `pictor` subcommand lives in its own cmd_*.cpp and adds itself to the app here.
#include <CLI/CLI.hpp>

namespace pictor::cli {

void add_dev_commands(CLI::App& app);
void add_describe_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_pull_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace pictor::cli

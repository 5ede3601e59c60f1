// The web page's embedded copy and the rules for serving files from --web-dir.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "serve/web_assets.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using pictor::serve::embedded_web_assets;
using pictor::serve::find_embedded_web_asset;
using pictor::serve::read_web_file;
using pictor::serve::safe_web_path;
using pictor::serve::web_content_type;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
}

}  // namespace

// The generated source must hold exactly the files of web/ as they are now: a stale copy means the
// build step did not rerun after an edit.
TEST(WebAssets, EmbeddedCopyMatchesTheSourceTree) {
  const fs::path web = fs::path(PICTOR_SOURCE_DIR) / "web";
  std::set<std::string> on_disk;
  for (const auto& entry : fs::recursive_directory_iterator(web)) {
    if (entry.is_regular_file()) on_disk.insert(fs::relative(entry.path(), web).generic_string());
  }
  std::set<std::string> embedded;
  for (const auto& asset : embedded_web_assets()) {
    embedded.insert(std::string(asset.path));
    EXPECT_EQ(std::string(asset.bytes), read_all(web / std::string(asset.path))) << asset.path;
  }
  EXPECT_EQ(embedded, on_disk);
  ASSERT_NE(find_embedded_web_asset("index.html"), nullptr);
  EXPECT_NE(std::string(find_embedded_web_asset("index.html")->bytes).find("<!doctype html>"), std::string::npos);
  EXPECT_EQ(find_embedded_web_asset("missing.js"), nullptr);
}

TEST(WebAssets, ContentTypesFollowTheExtension) {
  EXPECT_EQ(web_content_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(web_content_type("app.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(web_content_type("style.css"), "text/css; charset=utf-8");
  EXPECT_EQ(web_content_type("icons/logo.svg"), "image/svg+xml");
  EXPECT_EQ(web_content_type("a.png"), "image/png");
  EXPECT_EQ(web_content_type("noextension"), "application/octet-stream");
  EXPECT_EQ(web_content_type("app.js.bak"), "application/octet-stream");
}

TEST(WebAssets, SafePathsAreKeptAsTheyAre) {
  EXPECT_EQ(safe_web_path("app.js"), "app.js");
  EXPECT_EQ(safe_web_path("icons/logo.svg"), "icons/logo.svg");
  EXPECT_EQ(safe_web_path("a..b.js"), "a..b.js");  // dots inside a name are fine
}

TEST(WebAssets, TraversalAndMalformedPathsAreRefused) {
  for (const char* bad : {"", "/etc/passwd", "..", "../secret", "a/../../b", "a/..", "./app.js", "a//b", "a/",
                          "..\\secret", "a\\b", "%2e%2e/secret", "%252e", "C:/windows", "file:x",
                          "a\x01"
                          "b"}) {
    EXPECT_FALSE(safe_web_path(bad).has_value()) << '"' << bad << '"';
  }
  EXPECT_FALSE(safe_web_path(std::string("a\0b", 3)).has_value());
  EXPECT_FALSE(safe_web_path(std::string(600, 'a')).has_value());
}

TEST(WebAssets, ReadsFilesUnderTheFolderOnly) {
  const fs::path dir = pictor::test::temp_dir("web_assets");
  write_file(dir / "site" / "index.html", "<p>hi</p>");
  write_file(dir / "site" / "sub" / "x.js", "x()");
  write_file(dir / "secret.txt", "secret");
  EXPECT_EQ(read_web_file(dir / "site", "index.html"), "<p>hi</p>");
  EXPECT_EQ(read_web_file(dir / "site", "sub/x.js"), "x()");
  EXPECT_FALSE(read_web_file(dir / "site", "missing.js").has_value());
  EXPECT_FALSE(read_web_file(dir / "site", "sub").has_value());  // a folder is not a file
  // A link inside the folder that points outside it is refused.
  fs::create_symlink(dir / "secret.txt", dir / "site" / "link.txt");
  EXPECT_FALSE(read_web_file(dir / "site", "link.txt").has_value());
  EXPECT_FALSE(read_web_file(dir / "missing-root", "index.html").has_value());
}

#pragma once
// Images the server produced or received, as files under <data>/images/<id>.<ext> with one metadata row
// each in SQLite (size, format, the job that made it, A1111 parameters, seed ...). Files are written to a
// temporary name and renamed, so a crash never leaves a half-written image behind a row.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/image.hpp"
#include "storage/database.hpp"

namespace pictor::storage {

struct StoredImage {
  std::string id;      // "img_..."
  std::string format;  // "png", "jpeg", "webp"
  int width = 0, height = 0;
  uint64_t bytes = 0;
  double created = 0;
  std::string job_id;       // "" for uploads
  nlohmann::json metadata;  // seed, parameters text, prompt ... (free-form object)
};

class ImageStore {
 public:
  ImageStore(Database& db, std::filesystem::path dir);

  // Stores an encoded image (format from its magic bytes) and returns its record.
  StoredImage put(const std::vector<uint8_t>& encoded, int width, int height, const nlohmann::json& metadata = {},
                  const std::string& job_id = "");
  // Encodes `image` as PNG (with `text_chunks`) / JPEG / WebP and stores it.
  StoredImage put(const Image& image, const std::string& format, const TextChunks& text_chunks,
                  const nlohmann::json& metadata = {}, const std::string& job_id = "");

  std::optional<StoredImage> get(const std::string& id);
  std::vector<uint8_t> read(const StoredImage& image) const;  // the encoded file
  Image decode(const StoredImage& image) const;
  std::filesystem::path path_of(const StoredImage& image) const;
  static const char* mime_type(const std::string& format);  // "image/png" ...

 private:
  Database& db_;
  std::filesystem::path dir_;
};

}  // namespace pictor::storage

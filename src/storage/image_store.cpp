#include "storage/image_store.hpp"

#include <fstream>

#include "core/error.hpp"
#include "storage/ids.hpp"

namespace pictor::storage {

namespace {

const char* extension_of(const std::string& format) {
  if (format == "png") return "png";
  if (format == "jpeg") return "jpg";
  if (format == "webp") return "webp";
  throw Error("unknown image format \"" + format + "\" (png, jpeg or webp)");
}

std::string format_of(ImageFormat f) {
  switch (f) {
    case ImageFormat::Png: return "png";
    case ImageFormat::Jpeg: return "jpeg";
    case ImageFormat::Webp: return "webp";
    default: throw Error("not a PNG, JPEG or WebP image");
  }
}

}  // namespace

ImageStore::ImageStore(Database& db, std::filesystem::path dir) : db_(db), dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  db_.exec(R"(CREATE TABLE IF NOT EXISTS images (
      id TEXT PRIMARY KEY, format TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
      bytes INTEGER NOT NULL, created REAL NOT NULL, job_id TEXT NOT NULL DEFAULT '',
      metadata TEXT NOT NULL DEFAULT '{}'))");
}

std::filesystem::path ImageStore::path_of(const StoredImage& image) const {
  return dir_ / (image.id + "." + extension_of(image.format));
}

const char* ImageStore::mime_type(const std::string& format) {
  if (format == "png") return "image/png";
  if (format == "jpeg") return "image/jpeg";
  if (format == "webp") return "image/webp";
  return "application/octet-stream";
}

StoredImage ImageStore::put(const std::vector<uint8_t>& encoded, int width, int height, const nlohmann::json& metadata,
                            const std::string& job_id) {
  StoredImage rec;
  rec.id = new_id("img");
  rec.format = format_of(detect_image_format(encoded.data(), encoded.size()));
  rec.width = width;
  rec.height = height;
  rec.bytes = encoded.size();
  rec.created = now_seconds();
  rec.job_id = job_id;
  rec.metadata = metadata.is_object() ? metadata : nlohmann::json::object();

  // File first (under a temporary name, then renamed), row second: a row never points at a missing or
  // partial file; a crash in between leaves at worst an orphan file.
  auto path = path_of(rec);
  auto tmp = path;
  tmp += ".part";
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(encoded.data()), std::streamsize(encoded.size()));
    if (!out.flush()) throw Error("cannot write image file " + tmp.string());
  }
  std::filesystem::rename(tmp, path);

  std::lock_guard lock(db_.mutex());
  Statement q(db_,
              "INSERT INTO images (id, format, width, height, bytes, created, job_id, metadata) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, rec.id).bind(2, rec.format).bind(3, int64_t(width)).bind(4, int64_t(height));
  q.bind(5, int64_t(rec.bytes)).bind(6, rec.created).bind(7, job_id).bind(8, rec.metadata.dump());
  q.run();
  return rec;
}

StoredImage ImageStore::put(const Image& image, const std::string& format, const TextChunks& text_chunks,
                            const nlohmann::json& metadata, const std::string& job_id) {
  std::vector<uint8_t> bytes;
  if (format == "png")
    bytes = encode_png(image, text_chunks);
  else if (format == "jpeg")
    bytes = encode_jpeg(image, 95);
  else if (format == "webp")
    bytes = encode_webp(image, 90);
  else
    throw Error("unknown image format \"" + format + "\" (png, jpeg or webp)");
  return put(bytes, image.width, image.height, metadata, job_id);
}

std::optional<StoredImage> ImageStore::get(const std::string& id) {
  if (!is_valid_id(id, "img")) return std::nullopt;
  std::lock_guard lock(db_.mutex());
  Statement q(db_, "SELECT id, format, width, height, bytes, created, job_id, metadata FROM images WHERE id = ?");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  StoredImage rec;
  rec.id = q.text(0);
  rec.format = q.text(1);
  rec.width = int(q.int64(2));
  rec.height = int(q.int64(3));
  rec.bytes = uint64_t(q.int64(4));
  rec.created = q.real(5);
  rec.job_id = q.text(6);
  rec.metadata = nlohmann::json::parse(q.text(7), nullptr, false);
  if (rec.metadata.is_discarded()) rec.metadata = nlohmann::json::object();
  return rec;
}

std::vector<uint8_t> ImageStore::read(const StoredImage& image) const {
  return read_file_bytes(path_of(image), ImageLimits{uint64_t(1) << 40, uint64_t(1) << 40});
}

Image ImageStore::decode(const StoredImage& image) const {
  auto bytes = read(image);
  return decode_image(bytes.data(), bytes.size(), path_of(image).string(),
                      ImageLimits{uint64_t(1) << 40, uint64_t(1) << 40});
}

}  // namespace pictor::storage

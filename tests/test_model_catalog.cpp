// The model catalog: kinds from the folders, weight sizes from safetensors headers, and the LRU cache of
// loaded engines under a memory budget (idle engines are evicted, engines in use never are).
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "dev/make_tiny_sd.hpp"
#include "dev/make_tiny_vlm.hpp"
#include "jobs/model_catalog.hpp"
#include "support.hpp"

namespace fs = std::filesystem;
using pictor::jobs::ModelCatalog;
using pictor::jobs::ModelKind;

namespace {

fs::path models_dir() {
  static fs::path dir = [] {
    auto root = pictor::test::temp_dir("catalog") / "models";
    pictor::dev::make_tiny_sd(root / "a-sd");
    pictor::dev::TinySdOptions o;
    o.seed = 99;
    pictor::dev::make_tiny_sd(root / "b-sd", o);
    pictor::dev::make_tiny_vlm(root / "c-vlm");
    fs::create_directories(root / "not-a-model");
    return root;
  }();
  return dir;
}

std::vector<std::string> loaded_ids(ModelCatalog& c) {
  std::vector<std::string> ids;
  for (auto& e : c.loaded()) ids.push_back(e.id);
  return ids;
}

}  // namespace

TEST(ModelCatalog, ListsModelFoldersWithKindsAndSizes) {
  ModelCatalog catalog({models_dir(), 0, {}});
  auto models = catalog.list();
  ASSERT_EQ(models.size(), 3u);  // not-a-model is ignored
  EXPECT_EQ(models[0].id, "a-sd");
  EXPECT_EQ(models[0].kind, ModelKind::TextToImage);
  EXPECT_EQ(models[2].kind, ModelKind::ImageToText);
  EXPECT_GT(models[0].weight_bytes, 0u);
  EXPECT_EQ(catalog.default_model(ModelKind::ImageToText)->id, "c-vlm");
  EXPECT_FALSE(catalog.find("../models").has_value());
  EXPECT_FALSE(catalog.find("").has_value());
  EXPECT_THROW(catalog.image_to_text("a-sd"), pictor::Error);
  EXPECT_THROW(catalog.text_to_image("missing"), pictor::Error);
}

TEST(ModelCatalog, EvictsTheLeastRecentlyUsedIdleModelOverTheBudget) {
  ModelCatalog probe({models_dir(), 0, {}});
  const uint64_t one = probe.find("a-sd")->weight_bytes;
  ASSERT_EQ(probe.find("b-sd")->weight_bytes, one);
  // Room for two of the SD models, not three.
  ModelCatalog catalog({models_dir(), 2 * one + one / 2, {}});
  catalog.text_to_image("a-sd");
  catalog.text_to_image("b-sd");
  EXPECT_EQ(loaded_ids(catalog), (std::vector<std::string>{"b-sd", "a-sd"}));
  catalog.text_to_image("a-sd");  // now the most recently used
  EXPECT_EQ(loaded_ids(catalog), (std::vector<std::string>{"a-sd", "b-sd"}));

  ModelCatalog small({models_dir(), one + one / 2, {}});
  {
    auto a = small.text_to_image("a-sd");
    auto again = small.text_to_image("a-sd");
    EXPECT_EQ(a.get(), again.get()) << "a cached engine is reused, not loaded twice";
  }
  small.text_to_image("b-sd");  // a-sd is idle: evicted to make room
  EXPECT_EQ(loaded_ids(small), (std::vector<std::string>{"b-sd"}));

  auto in_use = small.text_to_image("b-sd");
  small.text_to_image("a-sd");  // b-sd is held by a job: kept even though the budget is exceeded
  auto ids = loaded_ids(small);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.front(), "a-sd");
}

TEST(ModelCatalog, Int8LanguageModelsCountAtTheirQuantizedSize) {
  pictor::jobs::CatalogOptions fp32_options{models_dir(), 0, {}};
  ModelCatalog fp32(fp32_options);
  const uint64_t on_disk = fp32.find("c-vlm")->weight_bytes;  // every tensor at fp32
  fp32.image_to_text("c-vlm");
  ASSERT_EQ(fp32.loaded().size(), 1u);
  EXPECT_EQ(fp32.loaded()[0].bytes, on_disk);

  pictor::jobs::CatalogOptions int8_options{models_dir(), 0, {}};
  int8_options.load.int8_decoder = true;
  ModelCatalog int8(int8_options);
  const auto engine = int8.image_to_text("c-vlm");
  ASSERT_TRUE(engine->int8_decoder());
  EXPECT_GT(engine->int8_saved_bytes(), 0);
  ASSERT_EQ(int8.loaded().size(), 1u);
  EXPECT_EQ(int8.loaded()[0].bytes, on_disk - uint64_t(engine->int8_saved_bytes()));
}

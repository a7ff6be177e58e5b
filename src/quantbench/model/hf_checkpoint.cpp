// HfCheckpoint; see hf_checkpoint.h. The index's weight_map is checked against the shards' own headers
// (every listed tensor is in the shard named for it, no tensor in two shards), so a stale index is an
// error rather than a silently missing layer.
#include "quantbench/model/hf_checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "quantbench/core/error.h"
#include "quantbench/core/sha256.h"

namespace qb::model {

namespace fs = std::filesystem;

bool is_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::shared_ptr<const HfCheckpoint> HfCheckpoint::open(const std::string& dir) {
  auto c = std::make_shared<HfCheckpoint>();
  c->dir_ = dir;
  const std::string cfg = (fs::path(dir) / "config.json").string();
  if (!fs::exists(cfg)) fail("{}: not a Hugging Face model directory (no config.json)", dir);
  c->config_ = formats::HfConfig::load(cfg);

  const std::string single = (fs::path(dir) / "model.safetensors").string();
  const std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  if (fs::exists(index)) {
    const auto idx = formats::HfConfig::load(index);
    const auto wm = idx.get_object("weight_map");
    for (const auto& name : wm.keys()) {
      std::string shard = wm.get_string(name);
      if (shard.empty() || shard.find('/') != std::string::npos || shard[0] == '.')
        fail("{}: weight_map: tensor '{}' names shard '{}', which is not a file name in the directory", index, name,
             shard);
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) shard_names.push_back(shard);
      weight_map[name] = std::move(shard);
    }
    if (shard_names.empty()) fail("{}: weight_map is empty", index);
    std::sort(shard_names.begin(), shard_names.end());
  } else if (fs::exists(single)) {
    shard_names.push_back("model.safetensors");
  } else {
    fail("{}: no model.safetensors and no model.safetensors.index.json", dir);
  }

  for (const auto& s : shard_names) {
    c->shards_.push_back(formats::SafetensorsFile::open((fs::path(dir) / s).string()));
    const auto& sf = *c->shards_.back();
    for (const auto& t : sf.tensors()) {
      auto [it, fresh] = c->index_.emplace(t.name, std::make_pair(c->shards_.size() - 1, &t));
      if (!fresh)
        fail("{}: tensor '{}' is also in {}", sf.path(), t.name, c->shards_[it->second.first]->path());
      if (!weight_map.empty()) {
        auto w = weight_map.find(t.name);
        if (w == weight_map.end()) fail("{}: tensor '{}' is not listed in {}", sf.path(), t.name, index);
        if (w->second != s) fail("{}: tensor '{}' is in {}, but the index says {}", index, t.name, s, w->second);
      }
    }
  }
  for (const auto& [name, shard] : weight_map)
    if (!c->index_.count(name)) fail("{}: tensor '{}' is listed for {} but that shard lacks it", index, name, shard);
  return c;
}

const formats::SafetensorsTensorInfo* HfCheckpoint::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.second;
}

const std::string& HfCheckpoint::shard_of(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail("{}: tensor '{}' is missing", dir_, name);
  return shards_[it->second.first]->path();
}

std::optional<std::string> HfCheckpoint::file(const std::string& name) const {
  const fs::path p = fs::path(dir_) / name;
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return p.string();
  return std::nullopt;
}

namespace {

std::vector<std::string> digest_files(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.empty() || n[0] == '.') continue;
    if (fs::is_regular_file(e.path(), ec)) names.push_back(n);  // follows symlinks (hub snapshots)
  }
  if (ec) fail("{}: cannot list the directory: {}", dir, ec.message());
  std::sort(names.begin(), names.end());  // std::string compares bytes: C-locale order
  return names;
}

}  // namespace

uint64_t HfCheckpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& f : digest_files(dir_)) n += fs::file_size(fs::path(dir_) / f);
  return n;
}

std::string sha256_directory(const std::string& dir) {
  Sha256 h;
  for (const auto& n : digest_files(dir)) {
    const std::string line = sha256_file((fs::path(dir) / n).string()) + "  " + n + "\n";
    h.update(line.data(), line.size());
  }
  return h.hex_digest();
}

}  // namespace qb::model

// A Hugging Face checkpoint directory: config.json, the weights as one model.safetensors or as shards
// listed by model.safetensors.index.json, and the tokenizer files beside them. This is the directory
// half only (which files, which tensor lives where, the directory's digest); what the tensors mean is
// the model layer's business (hf_model_map.h). Every shard is memory-mapped and fully validated by
// SafetensorsFile before a tensor is handed out, so a truncated shard fails here naming the shard.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "quantbench/formats/hf_config.h"
#include "quantbench/formats/safetensors.h"

namespace qb::model {

class HfCheckpoint {
 public:
  // Opens DIR (config.json + model.safetensors or model.safetensors.index.json + shards). Throws
  // qb::Error("DIR/...: ...") naming the file at fault.
  static std::shared_ptr<const HfCheckpoint> open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const formats::HfConfig& config() const { return config_; }
  const std::vector<std::unique_ptr<formats::SafetensorsFile>>& shards() const { return shards_; }

  // A tensor by its Hugging Face name (nullptr if absent) and the shard that holds it.
  const formats::SafetensorsTensorInfo* find_tensor(const std::string& name) const;
  const std::string& shard_of(const std::string& name) const;  // path; throws if absent

  // DIR/NAME if that file exists, else nullopt (tokenizer.json, tokenizer_config.json, ...).
  std::optional<std::string> file(const std::string& name) const;
  uint64_t total_bytes() const;  // of the files sha256_directory covers

 private:
  std::string dir_;
  formats::HfConfig config_ = formats::HfConfig::parse("{}", "");
  std::vector<std::unique_ptr<formats::SafetensorsFile>> shards_;
  std::map<std::string, std::pair<size_t, const formats::SafetensorsTensorInfo*>, std::less<>> index_;
};

// True if PATH is a directory (a Hugging Face checkpoint) rather than a file.
bool is_directory(const std::string& path);

// The digest that names a model directory in manifests: the sha256 of the text `sha256sum` prints for
// the directory's regular files (symlinks followed, names starting with '.' and subdirectories
// skipped), one "HEX  NAME\n" line per file in byte order of NAME. So
//   (cd DIR && LC_ALL=C ls -p | grep -v / | xargs -d '\n' sha256sum) | sha256sum
// gives the same value. A regular file's digest is sha256_file's.
std::string sha256_directory(const std::string& dir);

}  // namespace qb::model

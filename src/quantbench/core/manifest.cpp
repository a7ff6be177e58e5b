#include "quantbench/core/manifest.h"

#include <set>

#include "quantbench/core/error.h"

namespace qb {

const std::vector<ManifestField>& manifest_schema() {
  static const std::vector<ManifestField> schema = {
      {"model.name", "model name", true},
      {"model.architecture", "architecture family", true},
      {"model.parameters", "parameter count as stored", true},
      {"model.source_file", "file the model was loaded from", false},
      {"model.sha256", "sha256 of the source file", true},
      {"model.baseline_precision", "precision of the baseline weights", true},
      {"model.baseline_note", "whether the baseline was itself dequantized from a quantized file", true},
      {"scheme.name", "quantization scheme (short form), or 'none' for the baseline", false},
      {"scheme.tensors", "which tensors are quantized: weights / activations / KV cache", false},
      {"scheme.weight_format", "weight format and bits", false},
      {"scheme.group_size", "group size", false},
      {"scheme.symmetric", "symmetric or asymmetric", false},
      {"scheme.scale_dtype", "scale dtype", false},
      {"scheme.kept_high_precision", "tensors left in higher precision", false},
      {"scheme.bits_per_weight", "effective bits per weight, all tensors", false},
      {"scheme.bits_per_weight_no_embeddings", "effective bits per weight without embeddings", false},
      {"scheme.activations", "activation precision that ran", true},
      {"scheme.kv_cache", "KV cache precision that ran", true},
      {"calibration.method", "calibration method and its parameters", true},
      {"calibration.dataset", "calibration dataset name", true},
      {"calibration.dataset_sha256", "calibration dataset sha256", true},
      {"calibration.samples", "samples x sequence length", true},
      {"calibration.seed", "calibration seed", true},
      {"harness.quantbench_version", "quantbench version", false},
      {"harness.git_commit", "quantbench git commit", false},
      {"harness.task", "task name", true},
      {"harness.task_version", "task version", true},
      {"harness.dataset_sha256", "evaluation dataset sha256", true},
      {"harness.items", "number of items", true},
      {"harness.shots", "few-shot count", true},
      {"harness.prompt_template_hash", "prompt template hash", true},
      {"harness.generation", "generation parameters", true},
      {"harness.seed", "seeds", true},
      {"harness.batch_size", "batch size", true},
      {"toolchain.compiler", "compiler and version", false},
      {"toolchain.flags", "compiler flags", false},
      {"toolchain.backend", "backend and kernel paths that ran", true},
      {"toolchain.cuda", "CUDA toolkit / runtime / driver", false},
      {"toolchain.libraries", "library versions (cuBLAS, ...)", false},
      {"hardware.cpu", "CPU model and features", false},
      {"hardware.threads", "threads used", false},
      {"hardware.gpu", "GPU model and compute capability", false},
      {"hardware.bandwidth", "memory bandwidth measured in the same run", false},
  };
  return schema;
}

void Manifest::merge(const Manifest& other) {
  for (const auto& [k, f] : other.facts_) facts_[k] = f;
}

const Fact* Manifest::find(std::string_view key) const {
  auto it = facts_.find(key);
  return it == facts_.end() ? nullptr : &it->second;
}

std::string Manifest::value_or(std::string_view key, std::string fallback) const {
  const Fact* f = find(key);
  return f && f->known ? f->value : fallback;
}

std::vector<std::string> Manifest::missing(std::string_view prefix) const {
  std::vector<std::string> out;
  for (const auto& field : manifest_schema())
    if (field.key.starts_with(prefix) && !find(field.key)) out.emplace_back(field.key);
  return out;
}

nlohmann::json Manifest::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, f] : facts_) {
    if (f.known) j[k] = f.value;
    else j[k] = {{"value", "unknown"}, {"reason", f.reason}};
  }
  return j;
}

Manifest Manifest::from_json(const nlohmann::json& j) {
  if (!j.is_object()) fail("manifest: expected a JSON object");
  Manifest m;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) m.set(k, v.get<std::string>());
    else if (v.is_object() && v.contains("reason") && v["reason"].is_string()) m.set_unknown(k, v["reason"].get<std::string>());
    else fail("manifest: field '{}' is neither a string nor {{value, reason}}", k);
  }
  return m;
}

std::vector<ManifestDifference> diff_manifests(const Manifest& a, const Manifest& b) {
  std::set<std::string, std::less<>> keys;
  for (const auto& [k, _] : a.facts()) keys.insert(k);
  for (const auto& [k, _] : b.facts()) keys.insert(k);
  std::vector<ManifestDifference> out;
  for (const auto& k : keys) {
    const Fact* fa = a.find(k);
    const Fact* fb = b.find(k);
    const Fact na = fa ? *fa : Fact::unknown("not recorded");
    const Fact nb = fb ? *fb : Fact::unknown("not recorded");
    if (na.known == nb.known && na.value == nb.value) continue;
    // A field outside the schema is treated as affecting comparability (be conservative), except the
    // scheme's own details (scheme.tensor.*, scheme.artifact_*): the scheme is what is being compared.
    bool affects = !k.starts_with("scheme.");
    for (const auto& field : manifest_schema())
      if (field.key == k) affects = field.affects_comparability;
    out.push_back({k, na, nb, affects});
  }
  return out;
}

}  // namespace qb

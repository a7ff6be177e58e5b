// `quantbench quantize MODEL --scheme SPEC [--calib FILE --calib-samples N --calib-len L --seed S]
//  [--eval-text FILE] -o OUT`: quantizes a GGUF model and writes OUT.gguf (and, for INT4/INT8
// group-wise schemes, a compressed-tensors directory when OUT does not end in .gguf). Everything that ran is printed
// and stored as quantbench.* metadata.
#include <cstdio>
#include <memory>

#include "quantbench/cli/commands.h"
#include "quantbench/core/error.h"
#include "quantbench/core/read_file.h"
#include "quantbench/formats/gguf_reader.h"
#include "quantbench/model/model.h"
#include "quantbench/quant/calibration_data.h"
#include "quantbench/quant/quantize_model.h"
#include "quantbench/quant/scheme.h"
#include "quantbench/quant/writers/compressed_tensors.h"
#include "quantbench/quant/writers/gguf_output.h"
#include "quantbench/tokenizer/tokenizer.h"

namespace qb::cli {
namespace {

struct QuantizeArgs {
  std::string model, scheme, calib, eval_text, out;
  int64_t calib_samples = 128, calib_len = 512;
  uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
  bool calib_reference = false;
  std::string calib_order = "auto";
};

void run_quantize(const QuantizeArgs& a) {
  const auto methods = quant::builtin_methods();
  const quant::Scheme scheme = quant::load_scheme(a.scheme, methods);  // a bad scheme fails before any work
  // OUT.gguf: a GGUF file; any other path: a compressed-tensors directory (vLLM's layout).
  const std::string& out = a.out;
  const bool gguf = out.size() >= 5 && out.compare(out.size() - 5, 5, ".gguf") == 0;
  auto model = model::Model::load(a.model);

  quant::CalibrationData cd;
  if (!a.calib.empty()) {
    const auto tok = model->load_tokenizer();
    quant::CalibrationConfig cc{a.calib, a.calib_samples, a.calib_len, a.seed};
    cd = quant::load_calibration(cc, tok);
    if (!a.eval_text.empty()) {
      const std::string eval_text = read_file(a.eval_text, "evaluation text");
      if (auto w = quant::overlap_warning(cd.all_tokens, tok.encode(eval_text, false, false)))
        std::fprintf(stderr, "quantize: warning: %s\n", w->c_str());
    }
  }
  quant::QuantizeOptions qo;
  qo.calibration = a.calib.empty() ? nullptr : &cd.samples;
  qo.n_threads = a.threads;
  qo.progress = !a.quiet;
  qo.calibrate_on_reference = a.calib_reference;
  qo.calib_order = a.calib_order == "sequential" ? quant::CalibOrder::Sequential
                  : a.calib_order == "one-pass" ? quant::CalibOrder::OnePass
                                                : quant::CalibOrder::Auto;
  quant::QuantizedModel qm = quant::quantize_model(model, scheme, methods, qo);
  Manifest mf = qm.manifest;
  for (const auto& [k, v] : cd.facts) mf.set(k, v);
  if (a.calib.empty()) mf.set("calibration.dataset", "none");
  if (gguf) quant::write_quantized_gguf(qm, mf, out);
  else quant::write_compressed_tensors(qm, mf, out);
  std::printf("quantize: %s -> %s (scheme %s): %.4f bits/weight over all matrices, %.4f without embeddings\n",
              a.model.c_str(), out.c_str(), scheme.source.c_str(), qm.bpw_all, qm.bpw_no_embd);
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand("quantize", "Quantize a model (GGUF or Hugging Face directory) with a scheme (see docs/quantization.md)");
  auto a = std::make_shared<QuantizeArgs>();
  cmd->add_option("model", a->model, "GGUF model file or Hugging Face model directory")->required();
  cmd->add_option("--scheme", a->scheme, "Scheme short form (w4g32:gptq, q4_0, ...) or a .toml file")->required();
  cmd->add_option("--calib", a->calib, "Calibration text (.txt) or JSONL (field \"text\")");
  cmd->add_option("--calib-samples", a->calib_samples, "Calibration samples");
  cmd->add_option("--calib-len", a->calib_len, "Tokens per calibration sample");
  cmd->add_option("--seed", a->seed, "Calibration sampling seed (recorded)");
  cmd->add_option("--eval-text", a->eval_text, "Evaluation text to check the calibration text against (overlap warning)");
  cmd->add_option("-o,--output", a->out, "Output: OUT.gguf (GGUF) or a directory (compressed-tensors, INTk schemes)")->required();
  cmd->add_option("--threads,-t", a->threads, "CPU threads (0 = all cores)");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress bars");
  cmd->add_option("--calib-order", a->calib_order,
                  "auto (default): sequential when the scheme uses gptq, else one-pass; sequential: calibrate block "
                  "by block on the model whose earlier blocks are already quantized (GPTQ's reference does); "
                  "one-pass: every block on the unquantized model")
      ->check(CLI::IsMember({"auto", "sequential", "one-pass"}));
  cmd->add_flag("--calib-reference", a->calib_reference,
                "Collect calibration statistics on the exact CPU reference path (about 50x slower) instead of the "
                "fast kernels");
  cmd->callback([a] { run_quantize(*a); });
}

}  // namespace qb::cli

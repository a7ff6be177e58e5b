// What the parts of cuda_backend_check share (backend_check.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend_check.h"

using qb::runtime::Logits;

namespace backend_check {

namespace {
int g_fail = 0, g_checks = 0;
}  // namespace

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  ++g_checks;
  if (!ok) ++g_fail;
}
int check_failures() { return g_fail; }
int check_count() { return g_checks; }

std::vector<double> softmax(std::span<const float> z) {
  double mx = -INFINITY;
  for (float v : z) mx = std::max(mx, double(v));
  std::vector<double> p(z.size());
  double s = 0;
  for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(double(z[i]) - mx));
  for (double& v : p) v /= s;
  return p;
}

void add_kl(KlStats& st, const Logits& ref, const Logits& got) {
  if (ref.rows() != got.rows() || ref.n_vocab != got.n_vocab) { st.finite = false; return; }
  for (size_t r = 0; r < ref.rows(); ++r) {
    const auto p = softmax(ref.row(r)), q = softmax(got.row(r));
    double kl = 0;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i] > 0) kl += p[i] * (std::log(p[i]) - std::log(std::max(q[i], 1e-300)));
    if (!std::isfinite(kl)) st.finite = false;
    st.mean = (st.mean * double(st.rows) + kl) / double(st.rows + 1);
    st.max = std::max(st.max, kl);
    ++st.rows;
  }
}

std::vector<int32_t> tokens(int n, int32_t vocab, uint32_t seed) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    t.push_back(int32_t((seed >> 8) % uint32_t(vocab)));
  }
  return t;
}

int argmax(std::span<const float> z) {
  int b = 0;
  for (size_t i = 1; i < z.size(); ++i)
    if (z[i] > z[size_t(b)]) b = int(i);
  return b;
}

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

}  // namespace backend_check

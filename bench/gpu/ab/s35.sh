# ab.sh's blocks from session 35 (docs/perf.md, session 35, says what each measured and what it found).
# Sourced by ab.sh, which runs the blocks named on its command line; the helpers are in lib.sh.

# s35: the W8A8 tensor-core decode kernel's loop as a ping-pong: the backend check's W8A8 checks with it at every token
#   count, then the default (the ping-pong from 2 tokens) against the plain loop (QB_CUDA_W8A8_PIPE=0): FP8 at 1, 8,
#   16 streams and INT8 at 8, 16, interleaved, two rounds.
block_s35() {  # session 35: the W8A8 tensor-core decode kernel's loop as a ping-pong. The backend check's W8A8 checks with
  # the ping-pong at every token count (QB_CUDA_W8A8_PIPE=1; the default takes it from 2 tokens), then the default
  # against the plain loop (QB_CUDA_W8A8_PIPE=0): FP8 at 1, 8, 16 streams and INT8 at 8, 16 (INT8's one-token product is
  # the dp4a kernel), interleaved, S35_ROUNDS rounds (2). (At ccd1f8a, before the default changed, the same block ran
  # the plain loop against QB_CUDA_W8A8_PIPE=1.)
  QB_CUDA_W8A8_PIPE=1 timeout 300 ./qb_cuda_backend_check models/stories260K.gguf models/*w8a8*.gguf \
    > "$OUT/backend_check_pipe.log" 2>&1
  echo "backend_check (W8A8 models) with QB_CUDA_W8A8_PIPE=1 rc $?"
  grep -E "^(FAIL|FAILED|PASSED)" "$OUT/backend_check_pipe.log" | cut -c1-200 | head
  vs_env QB_CUDA_W8A8_PIPE=0 "default      " "plain loop   " "${S35_ROUNDS:-2}" "w8a8-fp8 1,8,16 128" "w8a8 8,16 128" \
    2>&1 | tee "$OUT/ab_s35.txt"
  rm -f "$OUT/tmp.log"
}

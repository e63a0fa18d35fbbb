#!/usr/bin/env bash
# The one prepared GPU check for issues 3 and 14 (device time is scarce: ~15 min a session; this takes
# at most 8 min). Run through the device tool from the repo root:  bash benchmarks/run_gpu.sh
# (it writes under $OUT, else /tmp/gpu-out).
# The device image has jax (CUDA), flax, optax, absl, chex, matplotlib and torch with cuDNN already.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}   # the device tool returns at most 8 files from $OUT
work=/tmp/gpu-work
mkdir -p "$out" "$work"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import jax, flax, torch; print(jax.__version__, jax.devices(), flax.__version__, torch.__version__)" \
  | tee -a "$out/gpu.txt"
peers=torch,jax_experimental_rnn,rnn_jax:kernel=cudnn,rnn_jax:kernel=scan,flax_linen
# 0. the cuDNN kernel against the scan (issue 14; these tests skip without a CUDA GPU)
timeout 120 python3 -m pytest -q -o addopts="" tests/kernels/test_cudnn.py 2>&1 | tail -15 | tee "$out/cudnn_tests.log"
# 1. the default grid, training step, float32 (cuDNN through torch, jax.experimental.rnn and kernel='cudnn')
timeout 130 python3 -m experiments.benchmark --peers=$peers --out_dir="$work/train" 2>&1 | grep -v '^[WI][0-9]' \
  | tee "$out/train.log"
timeout 90 python3 -m experiments.benchmark --peers=$peers --lengths=variable --out_dir="$work/variable" 2>&1 \
  | grep -v '^[WI][0-9]' | tee "$out/variable.log"
# 2. the GPU target region (B >= 64, H >= 512), bfloat16 and forward
timeout 70 python3 -m experiments.benchmark --cells=lstm --sizes=64x100x512x512,128x100x1024x1024 \
  --dtype=bfloat16 --out_dir="$work/bf16" 2>&1 | grep -v '^[WI][0-9]' | tee "$out/bf16.log"
timeout 60 python3 -m experiments.benchmark --peers=$peers --mode=forward --out_dir="$work/forward" 2>&1 \
  | grep -v '^[WI][0-9]' | tee "$out/forward.log"
for run in train variable; do cp "$work/$run/results.json" "$out/$run.json" 2>/dev/null; done  # 8 files in all
ls -la "$out"

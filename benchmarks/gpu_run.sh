#!/usr/bin/env bash
# On the lent GPU machine, from the repository root, once every .gpu-wheels/part-* has arrived:
# unpack MLX's CUDA backend, link the CUDA libraries that torch brought, run gpu_verify.py.
set -euo pipefail
SITE=${MLX_SITE:-/tmp/mlxsite}
OUT=${OUT:-gpu-verify-out}
if [ ! -f "$SITE/mlx/lib/libmlx.so" ]; then
  ls -la .gpu-wheels
  mkdir -p "$SITE"
  cat .gpu-wheels/part-* | xz -d -T0 | tar -x -C "$SITE"
fi
# libmlx.so finds cuBLAS, cuDNN, NVRTC, ... through an rpath of $ORIGIN/../../nvidia/...
NVIDIA=$(python3 -c 'import nvidia; print(list(nvidia.__path__)[0])')
ln -sfn "$NVIDIA" "$SITE/nvidia"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
python3 -m genai_common.cli env
python3 benchmarks/gpu_verify.py --out "$OUT" "$@"

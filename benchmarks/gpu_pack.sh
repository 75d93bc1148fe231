#!/usr/bin/env bash
# Pack MLX's CUDA backend for a lent GPU machine that has no package index (see gpu_verify.py).
# Downloads mlx 0.32.4 (cp312), mlx-cuda-13 0.32.4 and mlx-lm 0.32.2, unpacks them into one
# site folder (pip will not merge two wheels into one mlx/ folder), and writes it as xz parts
# under .gpu-wheels/ (ignored by git), each small enough to be carried in its own call.
# Takes about 4 minutes on 2 cores (xz -9e).
set -euo pipefail
cd "$(dirname "$0")/.."
MLX=${MLX_VERSION:-0.32.4}
MLX_LM=${MLX_LM_VERSION:-0.32.2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --no-deps -d "$work/wheels" --only-binary=:all: \
  --python-version 3.12 --platform manylinux_2_35_x86_64 \
  "mlx-cuda-13==$MLX" "mlx==$MLX" "mlx-lm==$MLX_LM"
python3 - "$work" <<'PY'
import pathlib, sys, zipfile
work = pathlib.Path(sys.argv[1])
for wheel in sorted((work / "wheels").glob("*.whl")):
    zipfile.ZipFile(wheel).extractall(work / "site")
PY
grep -qx '/.gpu-wheels/' .git/info/exclude 2>/dev/null || echo '/.gpu-wheels/' >> .git/info/exclude
rm -rf .gpu-wheels && mkdir .gpu-wheels
tar -C "$work/site" -cf - . | xz -9e -T0 | split -b 38M - .gpu-wheels/part-
ls -la .gpu-wheels

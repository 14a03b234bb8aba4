#!/usr/bin/env bash
# Paper-scale "Ours" on one GPU in one call (see docs/benchmarks.md, "Paper scale on a GPU").
#
#   benchmarks/gpu_paper_scale.sh --prep [prep options]   # CPU machine: pack gpu_inputs/
#   benchmarks/gpu_paper_scale.sh [run options]           # GPU machine: bench, train, score
#   benchmarks/gpu_paper_scale.sh --tiny [run options]    # the same path, tiny, on any machine
#
# The GPU machine needs python3 with numpy, torch (CUDA), pandas, scipy, pyyaml and tqdm.
# soundfile, librosa (+ soxr, audioread, pooch, platformdirs, decorator, cffi, pycparser) and
# the scoring backends museval / fast_bss_eval come from gpu_inputs/ (wheels/ and site/, made
# by --prep): a wheel is installed into a private folder only when its module is missing.
# Everything printed also goes to $OUT/log.txt (OUT defaults to ./gpu_out).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PIP_ROOT_USER_ACTION=ignore
export GPU_PAPER_T0=${GPU_PAPER_T0:-$(date +%s.%N)}

if [[ ${1:-} == --prep ]]; then
    shift
    exec "$PY" benchmarks/gpu_paper_scale.py prep "$@"
fi

INPUTS=${GPU_INPUTS:-gpu_inputs}
for ((i = 1; i <= $#; i++)); do # honour --inputs DIR / --inputs=DIR for the wheels too
    a=${!i}
    if [[ $a == --inputs ]]; then j=$((i + 1)); INPUTS=${!j:-$INPUTS}; fi
    if [[ $a == --inputs=* ]]; then INPUTS=${a#--inputs=}; fi
done
if [[ -d $INPUTS ]]; then INPUTS=$(cd "$INPUTS" && pwd); fi

SITE=${TMPDIR:-/tmp}/gpu_paper_scale_site
if [[ -f $INPUTS/wheels/modules.tsv ]]; then
    need=()
    while IFS=$'\t' read -r wheel module; do
        if [[ -z $module ]] || ! "$PY" -c "import $module" 2>/dev/null; then
            need+=("$INPUTS/wheels/$wheel")
        fi
    done <"$INPUTS/wheels/modules.tsv"
    if ((${#need[@]})); then
        echo "installing ${#need[@]} carried wheel(s) into $SITE: ${need[*]##*/}"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "${need[@]}"
        export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    fi
fi
if [[ -d $INPUTS/site ]]; then # the scoring backends, pure Python
    export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$INPUTS/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

OUT=${OUT:-gpu_out}
export OUT
mkdir -p "$OUT"
"$PY" benchmarks/gpu_paper_scale.py run --inputs "$INPUTS" --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"

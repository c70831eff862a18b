#!/usr/bin/env bash
# The GPU check (issue 15): on a machine with CUDA, run the tests that are parametrised over
# devices (their CUDA cases are skipped elsewhere), then time the model on the GPU. Budget:
# under 10 minutes; every step has its own timeout and the script goes on after a failure.
#
#   bash benchmarks/gpu_check.sh                  # logs in benchmarks/results/gpu_check/
#   OUT=/some/dir bash benchmarks/gpu_check.sh    # logs in $OUT
#
# Exit status: the number of failed steps (0 = all passed). summary.txt lists each step.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS="${OUT:-benchmarks/results/gpu_check}"
mkdir -p "$LOGS"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"  # e.g. PYTHON=.venv/bin/python
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
failed=0

BUDGET_S="${BUDGET_S:-570}"  # the whole script, leaving time to copy the logs

step() {  # step NAME TIMEOUT_S COMMAND... (the timeout is cut to what is left of the budget)
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET_S - SECONDS))
    if [ $left -lt 15 ]; then
        echo "$name: not run (the ${BUDGET_S} s budget is spent)" | tee -a "$SUMMARY"
        failed=$((failed + 1))
        return
    fi
    [ $limit -gt $left ] && limit=$left
    local start=$SECONDS
    echo "== $name: $*" | tee -a "$LOGS/$name.log"
    timeout "$limit" "$@" >> "$LOGS/$name.log" 2>&1
    local status=$?
    local line="$name: exit $status after $((SECONDS - start)) s"
    [ $status -eq 124 ] && line="$line (timed out at $limit s)"
    echo "$line" | tee -a "$SUMMARY"
    [ $status -eq 0 ] || failed=$((failed + 1))
}

step environment 30 bash -c "nvidia-smi; $PY -c 'import torch, torch_geometric as pyg; \
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"pyg\", pyg.__version__); \
print([torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]); \
assert torch.cuda.is_available(), \"CUDA is not available: nothing to check\"'"
if [ $failed -ne 0 ]; then
    echo "no usable CUDA device (see $LOGS/environment.log); stopping" | tee -a "$SUMMARY"
    exit 1
fi

# Device-parametrised tests (sparse kernels and their memoised CSR structures, fused Adam,
# sparse/dense equivalence, AMP) and the data-parallel tests (gloo on the CPU; NCCL when the
# machine has 2 GPUs). -rs lists what was skipped and why.
step tests 200 "$PY" -m pytest -q -rs -p no:cacheprovider \
    tests/nn/test_functional.py tests/nn/test_diff_gat_conv.py tests/train/test_optim.py \
    tests/models/test_dense_amb_dsgdn.py tests/train/test_trainer.py::test_amp_on_cuda_only \
    tests/train/test_distributed.py

# A short real run on the GPU, with AMP, and its checkpoint evaluated.
step train_amp 90 "$PY" -m dsgdn_pyg.cli train --device cuda --amp --epochs 2 \
    --out "$LOGS/train_amp"
step evaluate 40 "$PY" -m dsgdn_pyg.cli evaluate --checkpoint "$LOGS/train_amp/best.pt" \
    --device cuda --json "$LOGS/train_amp/eval.json"
if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)" -ge 2 ]; then
    step train_ddp 100 "$PY" -m dsgdn_pyg.cli train --device cuda --epochs 2 \
        --nproc-per-node 2 --out "$LOGS/train_ddp"
fi

# Timing. `dsgdn-pyg benchmark --scenario` runs its scenarios on the CPU (its runner times CPU
# processes), so the same shapes are also timed on the GPU by benchmarks/cuda_steps.py.
step benchmark_iemocap_cpu 120 "$PY" -m dsgdn_pyg.cli benchmark --scenario iemocap --json
step benchmark_preset_cuda 40 "$PY" -m dsgdn_pyg.cli benchmark --device cuda --json
step cuda_iemocap 60 "$PY" benchmarks/cuda_steps.py --scenario iemocap --json
step cuda_long_10000 60 "$PY" benchmarks/cuda_steps.py --scenario long-10000 --json

echo "failed steps: $failed" | tee -a "$SUMMARY"
exit $failed

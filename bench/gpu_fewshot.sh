#!/usr/bin/env bash
# One command for a lent GPU (one H100; about 8 minutes, under the 9 the issue allows): records
# the machine, then runs the few-shot benchmark at C=16, N=5, 32 px (bench/nb201_fewshot.py --gpu,
# one seed) and the cost of one split decision, LID against GM-NAS, at batch 512 and 2048
# (bench/split_cost.py: peak memory and time). Every figure lands in $RESULTS (default
# bench/results/gpu); each stage has its own time limit, so a slow one cannot eat the others'.
#
#   DATA=data/cifar10-packed bash bench/gpu_fewshot.sh          # on the GPU machine
#   QUICK=1 bash bench/gpu_fewshot.sh                            # the same steps, CPU, seconds
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RESULTS=${RESULTS:-bench/results/gpu}
DATA=${DATA:-../shared/data/cifar10-packed}
mkdir -p "$RESULTS"
"$PY" - "$RESULTS/machine.json" <<'PYEOF'
import json, platform, sys
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info |= {"gpu": p.name, "gpu_memory_GiB": round(p.total_memory / 2**30, 1),
             "cudnn": torch.backends.cudnn.version()}
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info))
PYEOF
if [ -n "${QUICK:-}" ]; then
  timeout 600 "$PY" bench/nb201_fewshot.py --quick --seeds 0 --no-progress \
    --work "$RESULTS/work" --out "$RESULTS/nb201_fewshot-quick.json"
  timeout 300 "$PY" bench/split_cost.py --device cpu --batch 32 --C 4 --N 1 \
    --out "$RESULTS/split_cost-quick.json"
else
  timeout 400 "$PY" bench/nb201_fewshot.py --gpu --data "$DATA" --seeds 0 --no-progress \
    --work "$RESULTS/work" --out "$RESULTS/nb201_fewshot-gpu.json"
  timeout 90 "$PY" bench/split_cost.py --batch 512 2048 --cifar "$DATA" \
    --out "$RESULTS/split_cost-gpu.json"
fi
echo "gpu_fewshot: figures in $RESULTS"

#!/usr/bin/env bash
# One GPU session's checks: attention kernels (parity + speed), bf16 train step bench vs the torch peer,
# scan vs unrolled compile time. Writes JSON lines to $OUT (or ./gpu-out).
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
nvidia-smi -L
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
bench() { timeout "$1" python3 -c 'import sys; from jaxbert.cli import main; sys.exit(main())' bench "${@:2}"; }
for impl in "jaxbert --attention xla" "torch" "jaxbert --attention cudnn"; do
  bench 60 --model bert-base --batch 32 --seq 128 --steps 20 --dtype bfloat16 --impl $impl | tee -a "$OUT/bench.jsonl"
done
timeout 60 python3 benchmarks/attention_kernels.py --model bert-base --batch 16 --seq 512 --steps 10 | tee "$OUT/attention.jsonl"
timeout 45 python3 -m jaxbert.model.compile_bench --model bert-large | tee "$OUT/compile.txt"

#!/usr/bin/env bash
# Fine-tuning side by side on one GPU: all of SST-2's train.tsv but 2,000 held-out rows, one epoch, jaxbert vs
# transformers + PyTorch from the same MiniLM weights, float32 (TF32 matmuls on both) and bfloat16 compute.
# Needs .gpu/minilm16 (all-MiniLM-L6-v2 stored as float16, loaded as float32 by both sides: the fp32 file is
# over the device's upload limit) and .gpu/data/sst2-train.tsv; see docs/benchmarks.md. Writes JSON to $OUT.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
nvidia-smi -L
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c "import jaxbert.finetune.run, jaxbert.train.loop, torch, transformers" || exit 1
for dtype in bfloat16 float32; do
  timeout 240 python3 benchmarks/finetune_peer_torch.py --task sst2 --train .gpu/data/sst2-train.tsv \
    --init .gpu/minilm16 --eval-size 2000 --seq-len 64 --batch-size 32 --lr 5e-5 --epochs 1 \
    --device cuda --dtype "$dtype" --workdir "/tmp/ft-$dtype" > "$OUT/sst2-$dtype.json" 2> "$OUT/sst2-$dtype.err"
  echo "$dtype rc=$?"; tail -c 1500 "$OUT/sst2-$dtype.json"; echo; grep -v "it/s\]" "$OUT/sst2-$dtype.err" | tail -5
done

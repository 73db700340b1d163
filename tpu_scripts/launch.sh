#!/usr/bin/env bash
# Launch one jaxbert command on all workers (jax.distributed initialises itself from the TPU environment).
# Usage: tpu_scripts/launch.sh pretrain --config configs/pretrain/bert_base.py --workdir /mnt/gcs/run1
# The workdir must be one path every worker sees (a bucket mounted with gcsfuse, or Filestore/NFS):
# process 0 writes the data cache and metrics there, every process writes its checkpoint shards.
source "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...] (e.g. pretrain --config ... --workdir /mnt/gcs/run1)"; exit 2; }
args=$(printf ' %q' "$@")
on_all_workers "cd $REMOTE_DIR && . .venv/bin/activate && nohup jaxbert$args > /tmp/jaxbert.log 2>&1 &"
echo "launched; follow with tpu_scripts/logs.sh"

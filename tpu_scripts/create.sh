#!/usr/bin/env bash
# Create a Cloud TPU: a TPU VM (single host or pod slice), or a queued resource (one slice, or a multislice).
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE --accelerator-type TYPE [options]

Create a TPU VM, on demand (default) or as spot capacity, directly or through a queued resource
(waits in Cloud TPU's queue until capacity frees up; the only way to get a multislice).

  --accelerator-type TYPE  e.g. v5litepod-16 (v5e, 16 chips, 4 hosts), v4-32, v6e-8 [ACCELERATOR_TYPE]; required
  --runtime-version V      the TPU VM image [RUNTIME_VERSION]; default from the type: v5litepod → v2-alpha-tpuv5-lite,
                           v5p → v2-alpha-tpuv5, v6e → v2-alpha-tpuv6e, others → tpu-ubuntu2204-base
  --spot                   spot capacity: cheaper, may be preempted at any time [SPOT=1]

Examples:
  $PROG --name bert-v5e --zone us-west4-a --accelerator-type v5litepod-16 --spot --queued
  $PROG --name bert-2x --zone us-west4-a --accelerator-type v5litepod-16 --node-count 2   # multislice
  $PROG --name bert-v5e --zone us-west4-a --accelerator-type v5litepod-16 --dry-run"

ACCELERATOR_TYPE=${ACCELERATOR_TYPE:-}
RUNTIME_VERSION=${RUNTIME_VERSION:-}
SPOT=${SPOT:-0}

script_flag() {
  case "$1" in
    --accelerator-type | --accelerator-type=*) opt_value --accelerator-type "$@"; ACCELERATOR_TYPE=$VALUE ;;
    --runtime-version | --runtime-version=*) opt_value --runtime-version "$@"; RUNTIME_VERSION=$VALUE ;;
    --spot) SPOT=1; TAKEN=1 ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -eq 0 ] || die "unexpected argument '${REST[0]}' (see --help)"
[ -n "$ACCELERATOR_TYPE" ] || die "--accelerator-type (or ACCELERATOR_TYPE) is required, e.g. v5litepod-16"
if [ -z "$RUNTIME_VERSION" ]; then
  case "$ACCELERATOR_TYPE" in
    v5litepod-* | v5e-*) RUNTIME_VERSION=v2-alpha-tpuv5-lite ;;
    v5p-*) RUNTIME_VERSION=v2-alpha-tpuv5 ;;
    v6e-*) RUNTIME_VERSION=v2-alpha-tpuv6e ;;
    *) RUNTIME_VERSION=tpu-ubuntu2204-base ;;
  esac
fi
capacity=()
if [ "$SPOT" = 1 ]; then capacity=(--spot); fi

if [ "$QUEUED" = 1 ]; then
  if [ "$NODE_COUNT" -gt 1 ]; then
    nodes=(--node-count "$NODE_COUNT" --node-prefix "$NAME")
  else
    nodes=(--node-id "$NAME")
  fi
  run gcloud compute tpus queued-resources create "$NAME" "${LOCATION[@]}" --accelerator-type "$ACCELERATOR_TYPE" \
    --runtime-version "$RUNTIME_VERSION" "${nodes[@]}" ${capacity[@]+"${capacity[@]}"}
  echo "$PROG: queued. Wait for state ACTIVE with:" \
    "gcloud compute tpus queued-resources describe $NAME ${LOCATION[*]} --format='value(state.state)'"
else
  run gcloud compute tpus tpu-vm create "$NAME" "${LOCATION[@]}" --accelerator-type "$ACCELERATOR_TYPE" \
    --version "$RUNTIME_VERSION" ${capacity[@]+"${capacity[@]}"}
fi
echo "$PROG: next: tpu_scripts/setup.sh --name $NAME --zone $ZONE$([ "$QUEUED" = 1 ] && echo ' --queued')"

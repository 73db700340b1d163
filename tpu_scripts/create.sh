#!/usr/bin/env bash
# Create a TPU VM (single host or pod slice), directly or as a queued resource (QUEUED=1, SPOT=1 for spot).
source "$(dirname "$0")/common.sh"
if [ "$QUEUED" = 1 ]; then
  extra=(); [ "${SPOT:-0}" = 1 ] && extra+=(--spot)
  gcloud compute tpus queued-resources create "$TPU_NAME" --node-id "$TPU_NAME" --zone "$ZONE" \
    --project "$PROJECT" --accelerator-type "$ACCELERATOR_TYPE" --runtime-version "$RUNTIME_VERSION" "${extra[@]}"
  echo "queued; watch with: gcloud compute tpus queued-resources describe $TPU_NAME --zone $ZONE"
else
  gcloud compute tpus tpu-vm create "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" \
    --accelerator-type "$ACCELERATOR_TYPE" --version "$RUNTIME_VERSION"
fi

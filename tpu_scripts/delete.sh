#!/usr/bin/env bash
# Delete the TPU VM (or its queued resource).
source "$(dirname "$0")/common.sh"
if [ "$QUEUED" = 1 ]; then
  gcloud compute tpus queued-resources delete "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" --force --quiet
else
  gcloud compute tpus tpu-vm delete "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" --quiet
fi

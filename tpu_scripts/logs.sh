#!/usr/bin/env bash
# Show the end of the log of every worker (WORKER=0 for the first only).
source "$(dirname "$0")/common.sh"
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" --worker="${WORKER:-all}" \
  --command "tail -n ${LINES:-40} /tmp/jaxbert.log"

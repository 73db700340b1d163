#!/usr/bin/env bash
# Shared settings for the Cloud TPU VM scripts. Override any of them in the environment.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME, e.g. export TPU_NAME=jaxbert-v4-32}"
: "${ZONE:=us-central2-b}"
: "${ACCELERATOR_TYPE:=v4-8}"
: "${RUNTIME_VERSION:=tpu-ubuntu2204-base}"
: "${PROJECT:=$(gcloud config get-value project 2>/dev/null)}"
: "${REPO_URL:=}"                 # where workers clone jaxbert from (empty: copy this checkout with scp)
: "${REMOTE_DIR:=~/jaxbert}"
: "${QUEUED:=0}"                  # 1: create through a queued resource (spot/reserved capacity)
TPU_SSH=(gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --project "$PROJECT" --worker=all)
# Run one command on every worker of the slice at once.
on_all_workers() { "${TPU_SSH[@]}" --command "$1"; }

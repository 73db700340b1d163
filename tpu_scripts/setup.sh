#!/usr/bin/env bash
# Put jaxbert on every worker and install it with the TPU extra.
source "$(dirname "$0")/common.sh"
if [ -n "$REPO_URL" ]; then
  on_all_workers "rm -rf $REMOTE_DIR && git clone --depth 1 $REPO_URL $REMOTE_DIR"
else
  here=$(cd "$(dirname "$0")/.." && pwd)
  tarball=$(mktemp --suffix=.tgz)
  git -C "$here" archive --format=tar.gz -o "$tarball" HEAD
  gcloud compute tpus tpu-vm scp "$tarball" "$TPU_NAME:/tmp/jaxbert.tgz" --zone "$ZONE" --project "$PROJECT" --worker=all
  on_all_workers "rm -rf $REMOTE_DIR && mkdir -p $REMOTE_DIR && tar -xzf /tmp/jaxbert.tgz -C $REMOTE_DIR"
fi
on_all_workers "cd $REMOTE_DIR && python3 -m venv .venv && . .venv/bin/activate && pip install -q -U pip && pip install -q -e '.[tpu]' && python -c 'import jax; print(jax.process_index(), jax.device_count())'"

#!/usr/bin/env bash
# Delete the TPU VM, or the queued resource with all its slices. Asks first unless --yes.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE [options]

Delete the TPU VM (or, with --queued, the queued resource and every slice it holds). Its disks go with
it; a workdir on gs:// stays. Asks you to type the TPU name on the terminal unless --yes; without a
terminal and without --yes it refuses and deletes nothing.

  --yes   do not ask (needed without a terminal)

Examples:
  $PROG --name bert-v5e --zone us-west4-a
  $PROG --name bert-2x --zone us-west4-a --queued --yes"

script_flag() {
  case "$1" in
    --yes) YES=1; TAKEN=1 ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -eq 0 ] || die "unexpected argument '${REST[0]}' (see --help)"
if [ "$QUEUED" = 1 ]; then
  confirm "delete the queued resource $NAME and all its TPU slices"
  # --force deletes the slices the queued resource holds; --quiet: the question was asked above.
  run gcloud compute tpus queued-resources delete "$NAME" "${LOCATION[@]}" --force --quiet
else
  confirm "delete the TPU VM $NAME"
  run gcloud compute tpus tpu-vm delete "$NAME" "${LOCATION[@]}" --quiet
fi

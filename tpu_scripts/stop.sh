#!/usr/bin/env bash
# Stop the jaxbert run on every worker: SIGTERM, so it saves a checkpoint first. Optionally stop the VM.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE [options]

Send SIGTERM to the jaxbert run on every worker: jaxbert saves a checkpoint at the current step on all
processes and exits; launching the same command again resumes from it. Waits up to --timeout seconds for
each worker's process to exit. Asks for confirmation on the terminal unless --yes.

  --yes             do not ask (needed without a terminal)
  --timeout S       seconds to wait for the run to save and exit (default 300)
  --vm              then also stop the TPU VM (single TPU VMs only, not queued resources); start it again
                    with: gcloud compute tpus tpu-vm start NAME --zone ZONE
  --remote-dir DIR  where setup.sh installed jaxbert [REMOTE_DIR]; default jaxbert

Example:
  $PROG --name bert-v5e --zone us-west4-a"

TIMEOUT=300
STOP_VM=0

script_flag() {
  case "$1" in
    --yes) YES=1; TAKEN=1 ;;
    --vm) STOP_VM=1; TAKEN=1 ;;
    --timeout | --timeout=*) opt_value --timeout "$@"; TIMEOUT=$VALUE ;;
    --remote-dir | --remote-dir=*) opt_value --remote-dir "$@"; REMOTE_DIR=$VALUE ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -eq 0 ] || die "unexpected argument '${REST[0]}' (see --help)"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout '$TIMEOUT' must be a whole number of seconds"
if [ "$STOP_VM" = 1 ] && [ "$QUEUED" = 1 ]; then
  die "--vm: a queued resource cannot be stopped, only deleted (tpu_scripts/delete.sh --queued)"
fi
what="stop the jaxbert run on every worker of $NAME"
if [ "$STOP_VM" = 1 ]; then what="$what and then stop the TPU VM"; fi
confirm "$what"

dir=$(printf %q "$REMOTE_DIR")
stop="host=\$(hostname)
cd $dir 2>/dev/null && [ -f $PID_FILE ] && pid=\$(cat $PID_FILE) && kill -0 \"\$pid\" 2>/dev/null ||
  { echo \"\$host: no jaxbert running\"; exit 0; }
kill -TERM \"\$pid\"
waited=0
while kill -0 \"\$pid\" 2>/dev/null && [ \$waited -lt $TIMEOUT ]; do sleep 1; waited=\$((waited + 1)); done
if kill -0 \"\$pid\" 2>/dev/null; then echo \"\$host: jaxbert (pid \$pid) still running after $TIMEOUT s\" >&2; exit 1; fi
echo \"\$host: jaxbert stopped (pid \$pid)\""
on_all_workers "$stop"
if [ "$STOP_VM" = 1 ]; then
  run gcloud compute tpus tpu-vm stop "$NAME" "${LOCATION[@]}"
fi

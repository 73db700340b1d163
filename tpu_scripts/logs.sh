#!/usr/bin/env bash
# Show (or follow) each worker's jaxbert log, every line prefixed with the worker's host name.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE [options]

Print whether jaxbert runs on each worker and the end of its log (REMOTE_DIR/$LOG_FILE), each line
prefixed with the worker's host name.

  --worker W        one worker's index, or all (default all)
  --node N          one slice of a multislice (queued resource), or all (default all)
  --lines N         lines of each log (default 40)
  --follow          keep printing new lines until Ctrl-C
  --remote-dir DIR  where setup.sh installed jaxbert [REMOTE_DIR]; default jaxbert

Examples:
  $PROG --name bert-v5e --zone us-west4-a --follow
  $PROG --name bert-v5e --zone us-west4-a --worker 0 --lines 200"

WORKER=all
NODE=all
LINES=40
FOLLOW=0

script_flag() {
  case "$1" in
    --worker | --worker=*) opt_value --worker "$@"; WORKER=$VALUE ;;
    --node | --node=*) opt_value --node "$@"; NODE=$VALUE ;;
    --lines | --lines=*) opt_value --lines "$@"; LINES=$VALUE ;;
    --follow) FOLLOW=1; TAKEN=1 ;;
    --remote-dir | --remote-dir=*) opt_value --remote-dir "$@"; REMOTE_DIR=$VALUE ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -eq 0 ] || die "unexpected argument '${REST[0]}' (see --help)"
[[ "$WORKER" =~ ^(all|[0-9]+)$ ]] || die "--worker '$WORKER': a worker index (0, 1, ...) or all"
[[ "$NODE" =~ ^(all|[0-9]+)$ ]] || die "--node '$NODE': a slice index (0, 1, ...) or all"
if [ "$NODE" != all ] && [ "$QUEUED" = 0 ]; then die "--node needs --queued (slices belong to a queued resource)"; fi
[[ "$LINES" =~ ^[0-9]+$ ]] || die "--lines '$LINES' must be a whole number"

tail_opts="-n $LINES"
if [ "$FOLLOW" = 1 ]; then tail_opts="$tail_opts -F"; fi
dir=$(printf %q "$REMOTE_DIR")
show="host=\$(hostname)
if ! cd $dir 2>/dev/null || [ ! -f $LOG_FILE ]; then echo \"\$host: no log at $REMOTE_DIR/$LOG_FILE (not launched here)\"; exit 0; fi
if [ -f $PID_FILE ] && kill -0 \"\$(cat $PID_FILE)\" 2>/dev/null; then state=running; else state='not running'; fi
echo \"\$host: jaxbert \$state\"
tail $tail_opts $LOG_FILE | sed -u \"s/^/\$host: /\""
ssh_workers "$WORKER" "$NODE" "$show"

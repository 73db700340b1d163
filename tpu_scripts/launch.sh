#!/usr/bin/env bash
# Start one jaxbert command on every worker at once, in the background, each with its own log.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE [options] -- JAXBERT_ARGS...

Start \`jaxbert JAXBERT_ARGS...\` on every worker (of every slice) at once, detached from the ssh session.
The processes find each other through JAX's cluster detection (the TPU VM's metadata), so the command is
the same on every worker. Each worker writes its output to REMOTE_DIR/$LOG_FILE (the previous one is
kept as .prev); follow them with tpu_scripts/logs.sh, stop the run with tpu_scripts/stop.sh.

The workdir must be one place every worker reaches: a gs:// URL. Relaunching the same command resumes
from the workdir's latest checkpoint (after a preemption, a stop, or a crash).

  --env KEY=VALUE        set an environment variable for the run on every worker (repeatable)
  --remote-dir DIR       where setup.sh installed jaxbert [REMOTE_DIR]; default jaxbert
  --allow-local-workdir  accept a --workdir that is not gs:// (only sound on a single-host TPU VM)

Example:
  $PROG --name bert-v5e --zone us-west4-a -- pretrain --config configs/pretrain/bert_base.py \\
      --workdir gs://my-bucket/bert-base --config.data.corpus=gs://my-bucket/corpus/wiki.txt"

ENVS=()
ALLOW_LOCAL=0

script_flag() {
  case "$1" in
    --env | --env=*)
      opt_value --env "$@"
      [[ "$VALUE" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env '$VALUE': use KEY=VALUE"
      ENVS+=("$VALUE") ;;
    --remote-dir | --remote-dir=*) opt_value --remote-dir "$@"; REMOTE_DIR=$VALUE ;;
    --allow-local-workdir) ALLOW_LOCAL=1; TAKEN=1 ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -gt 0 ] || die "no jaxbert command: put it after --, e.g. -- pretrain --config ... --workdir gs://..."

workdir=""
previous=""
for word in "${REST[@]}"; do
  # After `--` it would reach jaxbert, and the launch would be real: refuse rather than guess.
  [ "$word" != "--dry-run" ] || die "--dry-run after -- would go to jaxbert; put it before --"
  case "$word" in --workdir=*) workdir=${word#--workdir=} ;; esac
  if [ "$previous" = "--workdir" ]; then workdir=$word; fi
  previous=$word
done
case "$workdir" in
  gs://?*) ;;
  "") die "the jaxbert command has no --workdir; give one every worker reaches, e.g. --workdir gs://BUCKET/run" ;;
  *)
    [ "$ALLOW_LOCAL" = 1 ] ||
      die "--workdir $workdir is not a gs:// URL: on a pod every worker needs the same workdir;" \
        "use gs://BUCKET/run (or pass --allow-local-workdir on a single-host TPU VM)" ;;
esac

quoted_args=$(printf ' %q' "${REST[@]}")
quoted_env=""
if [ ${#ENVS[@]} -gt 0 ]; then quoted_env=" env$(printf ' %q' "${ENVS[@]}")"; fi
dir=$(printf %q "$REMOTE_DIR")
# setsid + nohup: the run outlives the ssh session; stdin from /dev/null so ssh returns at once.
start="cd $dir && mkdir -p logs || exit 1
if [ -f $PID_FILE ] && kill -0 \"\$(cat $PID_FILE)\" 2>/dev/null; then
  echo \"\$(hostname): jaxbert is already running (pid \$(cat $PID_FILE)); stop it with tpu_scripts/stop.sh\" >&2
  exit 1
fi
if [ -f $LOG_FILE ]; then mv $LOG_FILE $LOG_FILE.prev; fi
nohup setsid$quoted_env .venv/bin/jaxbert$quoted_args > $LOG_FILE 2>&1 < /dev/null &
echo \$! > $PID_FILE
echo \"\$(hostname): started jaxbert (pid \$!), log $REMOTE_DIR/$LOG_FILE\""
on_all_workers "$start"
echo "$PROG: follow the workers with: tpu_scripts/logs.sh --name $NAME --zone $ZONE$([ "$QUEUED" = 1 ] && echo ' --queued') --follow"

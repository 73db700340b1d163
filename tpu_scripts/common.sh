#!/usr/bin/env bash
# Shared by the tpu_scripts (sourced, never run): argument parsing, --dry-run, confirmation of destructive
# commands, and the gcloud forms that reach every worker of a TPU VM or of a queued resource.
#
# A script sets USAGE (and may define script_flag to take its own options), then calls parse_args "$@".
# Nothing in this file runs gcloud; every gcloud command goes through `run`, which under --dry-run only
# prints it.
set -euo pipefail

PROG=$(basename "$0")
NAME=${TPU_NAME:-}
ZONE=${ZONE:-}
PROJECT=${PROJECT:-}
QUEUED=${QUEUED:-0}
NODE_COUNT=${NODE_COUNT:-1}
REMOTE_DIR=${REMOTE_DIR:-jaxbert}  # on each worker, relative to the login directory
DRY_RUN=0
YES=0
REST=()   # the words after `--` (launch: the jaxbert command)
TAKEN=0   # how many words the option parser just consumed
VALUE=""

COMMON_OPTIONS="Common options (each also read from the environment variable in brackets):
  --name NAME        the TPU VM or queued resource [TPU_NAME]; required
  --zone ZONE        e.g. us-west4-a [ZONE]; required
  --project PROJECT  [PROJECT]; default: gcloud's configured project
  --queued           the TPU is a queued resource [QUEUED=1]
  --node-count N     slices of a multislice queued resource (implies --queued) [NODE_COUNT]; default 1
  --dry-run          print every gcloud command instead of running it
  -h, --help         print this help and run nothing"

die() {
  echo "$PROG: $*" >&2
  exit 2
}

# opt_value FLAG WORDS...: the value of FLAG given as `FLAG VALUE` or `FLAG=VALUE`; sets VALUE and TAKEN.
opt_value() {
  local flag=$1
  shift
  case "$1" in
    "$flag"=*) VALUE=${1#*=}; TAKEN=1 ;;
    *)
      if [ $# -lt 2 ] || [ -z "$2" ] || [ "${2#-}" != "$2" ]; then die "$flag needs a value (see --help)"; fi
      VALUE=$2; TAKEN=2 ;;
  esac
}

wants_help() {
  local word
  for word in "$@"; do
    [ "$word" = "--" ] && return 1
    case "$word" in -h | --help) return 0 ;; esac
  done
  return 1
}

parse_args() {
  # --help wins wherever it stands before `--`, so `delete.sh --help` can never delete.
  if wants_help "$@"; then
    echo "$USAGE"
    echo
    echo "$COMMON_OPTIONS"
    exit 0
  fi
  while [ $# -gt 0 ]; do
    TAKEN=0
    case "$1" in
      --dry-run) DRY_RUN=1; TAKEN=1 ;;
      --queued) QUEUED=1; TAKEN=1 ;;
      --name | --name=*) opt_value --name "$@"; NAME=$VALUE ;;
      --zone | --zone=*) opt_value --zone "$@"; ZONE=$VALUE ;;
      --project | --project=*) opt_value --project "$@"; PROJECT=$VALUE ;;
      --node-count | --node-count=*) opt_value --node-count "$@"; NODE_COUNT=$VALUE ;;
      --) shift; REST=("$@"); break ;;
      *)
        if declare -F script_flag >/dev/null; then script_flag "$@"; fi
        if [ "$TAKEN" = 0 ]; then
          case "$1" in
            -*) die "unknown option $1 (see --help)" ;;
            *) die "unexpected argument '$1' (see --help)" ;;
          esac
        fi ;;
    esac
    shift "$TAKEN"
  done
  [ -n "$NAME" ] || die "--name (or TPU_NAME) is required: the TPU VM or queued resource to act on"
  [[ "$NAME" =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] ||
    die "--name '$NAME': use lowercase letters, digits and hyphens, starting with a letter"
  [ -n "$ZONE" ] || die "--zone (or ZONE) is required, e.g. --zone us-west4-a"
  [[ "$NODE_COUNT" =~ ^[1-9][0-9]*$ ]] || die "--node-count '$NODE_COUNT' must be a positive whole number"
  [[ "$QUEUED" =~ ^[01]$ ]] || die "QUEUED='$QUEUED' must be 0 or 1"
  # Multislice slices can only be created, reached and deleted as one queued resource.
  if [ "$NODE_COUNT" -gt 1 ]; then QUEUED=1; fi
  LOCATION=(--zone "$ZONE")
  if [ -n "$PROJECT" ]; then LOCATION+=(--project "$PROJECT"); fi
  if [ "$DRY_RUN" = 0 ] && ! command -v gcloud >/dev/null; then
    die "gcloud not found on PATH; install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
  fi
}

# run COMMAND...: print it (shell-quoted, so it can be pasted); under --dry-run that is all.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    printf '+' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    "$@"
  fi
}

# confirm WHAT: ask on the terminal before a destructive command; refuse without one unless --yes.
confirm() {
  if [ "$YES" = 1 ] || [ "$DRY_RUN" = 1 ]; then return 0; fi
  [ -t 0 ] || die "refusing to $1 without a terminal to confirm on; pass --yes to do it anyway"
  local answer
  read -r -p "$PROG: $1? Type the TPU name ($NAME) to confirm: " answer
  [ "$answer" = "$NAME" ] || die "not confirmed; nothing was done"
}

# The ssh / scp forms that reach every worker (of every slice, for a queued resource).
ssh_workers() {  # ssh_workers WORKER NODE COMMAND
  if [ "$QUEUED" = 1 ]; then
    run gcloud compute tpus queued-resources ssh "$NAME" "${LOCATION[@]}" --worker="$1" --node="$2" --command "$3"
  else
    run gcloud compute tpus tpu-vm ssh "$NAME" "${LOCATION[@]}" --worker="$1" --command "$3"
  fi
}

on_all_workers() {  # on_all_workers COMMAND
  ssh_workers all all "$1"
}

copy_to_all_workers() {  # copy_to_all_workers DESTINATION LOCAL_FILE...
  local dest=$1
  shift
  if [ "$QUEUED" = 1 ]; then
    run gcloud compute tpus queued-resources scp "$@" "$NAME:$dest" "${LOCATION[@]}" --worker=all --node=all
  else
    run gcloud compute tpus tpu-vm scp "$@" "$NAME:$dest" "${LOCATION[@]}" --worker=all
  fi
}

# The path of the jaxbert run's files on a worker: its pid and its log.
# shellcheck disable=SC2034  # used by the scripts that source this file
PID_FILE=logs/jaxbert.pid
# shellcheck disable=SC2034
LOG_FILE=logs/jaxbert.log

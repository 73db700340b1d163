"""Compile time of a forward+backward pass with nn.scan over layers vs the unrolled loop.

    python -m jaxbert.model.compile_bench --model bert-large --batch 2 --seq 128

Lowers and compiles `jax.jit(jax.grad(loss))` ahead of time on abstract params (nothing is
allocated), where loss = sum of the MLM logits at a few positions, and prints one JSON line per
layout plus the unrolled/scan ratio.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp

from jaxbert.config import ModelConfig, get_preset
from jaxbert.model.model import EncoderModel
from jaxbert.model.params import param_shapes


def compile_seconds(config: ModelConfig, batch: int, seq: int, positions: int) -> dict[str, float]:
    """Seconds to lower and to compile one grad step of `config` for [batch, seq] inputs."""

    def loss(params, ids, mask, masked):
        out = EncoderModel(config).apply({"params": params}, ids, mask, masked_positions=masked, heads=("mlm",))
        return out.logits["mlm"].sum()

    ids = jax.ShapeDtypeStruct((batch, seq), jnp.int32)
    masked = jax.ShapeDtypeStruct((batch, positions), jnp.int32)
    params = param_shapes(config)
    step = jax.jit(jax.grad(loss))
    start, cpu_start = time.perf_counter(), time.process_time()
    lowered = step.lower(params, ids, ids, masked)
    lowered_at, cpu_lowered = time.perf_counter(), time.process_time()
    lowered.compile()
    done, cpu_done = time.perf_counter(), time.process_time()
    # CPU seconds (all threads) are robust to other load on the machine; wall seconds are what a user waits.
    return {"lower_s": round(lowered_at - start, 2), "compile_s": round(done - lowered_at, 2),
            "lower_cpu_s": round(cpu_lowered - cpu_start, 2), "compile_cpu_s": round(cpu_done - cpu_lowered, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert-large")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--positions", type=int, default=4, help="MLM positions per row in the loss")
    args = parser.parse_args(argv)
    base = get_preset(args.model)
    # Warm-up: the first compile in a process pays one-off backend start-up costs; keep them out of both timings.
    compile_seconds(base.replace(num_layers=1, scan_layers=False), 1, 8, 1)
    results = {}
    for scan in (True, False):
        r = compile_seconds(base.replace(scan_layers=scan), args.batch, args.seq, args.positions)
        results[scan] = r
        print(json.dumps({"model": args.model, "layers": base.num_layers, "scan_layers": scan, "batch": args.batch,
                          "seq": args.seq, "backend": jax.default_backend(), **r}), flush=True)
    total = {scan: {kind: r[f"lower{kind}"] + r[f"compile{kind}"] for kind in ("_s", "_cpu_s")}
             for scan, r in results.items()}
    print(json.dumps({"unrolled_over_scan_wall": round(total[False]["_s"] / total[True]["_s"], 2),
                      "unrolled_over_scan_cpu": round(total[False]["_cpu_s"] / total[True]["_cpu_s"], 2)}))


if __name__ == "__main__":
    main()

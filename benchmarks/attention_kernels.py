"""Attention kernels side by side on one device: agreement with the float32 XLA reference, and speed.

    python benchmarks/attention_kernels.py [--model bert-base] [--batch 8] [--seq 512] [--steps 10]

For each kernel (xla, dot_product, cudnn where the backend has it) in bfloat16, prints one JSON
line: max abs difference of the last hidden state and of the gradients vs the float32 XLA kernel
(same params, padded batch), and the median time of a forward+backward step.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxbert.config import get_preset
from jaxbert.model import EncoderModel, init_params


def make_step(config):
    model = EncoderModel(config)

    def loss_fn(params, ids, mask):
        out = model.apply({"params": params}, ids, mask, deterministic=True)
        h = out.last_hidden_state.astype(jnp.float32)
        return jnp.mean(jnp.square(h) * mask[..., None]), h

    return jax.jit(jax.value_and_grad(loss_fn, has_aux=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bert-base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    base = get_preset(args.model).replace(heads=(), pooler=False, hidden_dropout=0.0, attention_dropout=0.0)
    params = init_params(base, 0)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, base.vocab_size, (args.batch, args.seq)).astype(np.int32)
    lengths = rng.integers(args.seq // 4, args.seq + 1, args.batch)
    mask = (np.arange(args.seq)[None] < lengths[:, None]).astype(np.int32)
    ids, mask = jnp.asarray(ids), jnp.asarray(mask)

    (_, ref_h), ref_g = make_step(base.replace(attention_kernel="xla"))(params, ids, mask)
    real = np.asarray(mask, bool)
    kernels = ["xla", "dot_product"] + (["cudnn"] if jax.default_backend() == "gpu" else [])
    for kernel in kernels:
        cfg = base.replace(attention_kernel=kernel, compute_dtype="bfloat16")
        step = make_step(cfg)
        start = time.perf_counter()
        (_, h), g = step(params, ids, mask)
        jax.block_until_ready(g)
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            jax.block_until_ready(step(params, ids, mask))
            times.append(time.perf_counter() - start)
        h_diff = float(np.abs(np.asarray(h) - np.asarray(ref_h))[real].max())
        g_diff = max(float(jnp.max(jnp.abs(a.astype(jnp.float32) - b)))
                     for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(ref_g), strict=True))
        g_scale = max(float(jnp.max(jnp.abs(b))) for b in jax.tree_util.tree_leaves(ref_g))
        print(json.dumps({"kernel": kernel, "dtype": "bfloat16", "model": args.model, "batch": args.batch,
                          "seq": args.seq, "hidden_max_abs_diff_vs_fp32_xla": h_diff,
                          "grad_max_abs_diff_vs_fp32_xla": g_diff, "grad_max_abs_fp32": g_scale,
                          "fwd_bwd_s_median": statistics.median(times), "compile_s": compile_s,
                          "device": str(jax.devices()[0].device_kind)}), flush=True)


if __name__ == "__main__":
    main()

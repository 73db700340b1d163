"""`jaxbert bench`: time one pretraining train step and print ONE JSON line.

    jaxbert bench --model bert-base --objective mlm|electra|distill|pkd --batch 8 --seq 128 --steps 10
                  [--impl jaxbert|torch] [--dtype float32|bfloat16] [--teacher PRESET] [--profile DIR]
                  [--corpus FILE --vocab DIR [--pack on|off]]

With `--corpus` (a text corpus) and `--vocab` (a tokenizer dir) the timed batches are real pretraining
examples cut from the corpus (the family's pair format), unpacked or packed several per row
(`--pack on`, jaxbert.data.packing), and the JSON line adds `pack`, `padding_share` and
`real_tokens_per_s` (non-padding tokens a second: the figure packing raises).

Every implementation runs the same work: dynamic 80/10/10 masking of 15% of the tokens, the
family's pretraining heads and losses, AdamW (lr 1e-4, weight decay 0.01 off LayerNorms and
biases, clipping at 1.0) on random token batches. jaxbert computes MLM logits only at the masked
positions (max_predictions slots); transformers' models compute them at every position, and
`model_flops_per_step` counts each implementation's own work.

Objectives (jaxbert): mlm (the family's pretraining objective), electra (--model is the discriminator,
the generator at 1/4 of its width as the original code sizes it), distill (DistilBERT's losses; --model is
the student) and pkd (Patient KD with MLM as the task), both from a random frozen --teacher (default
bert-base for a DistilBERT student, else --model at twice the depth). --impl torch runs transformers'
MLM pretraining step only. There is no hf-flax peer: transformers 5 ships no Flax models.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np

from jaxbert.errors import JaxbertError

IMPLS = ("jaxbert", "torch")
OBJECTIVES = ("mlm", "electra", "distill", "pkd")
KEYS = ("impl", "model", "objective", "batch", "seq", "dtype", "steps", "step_s_median", "tokens_per_s", "compile_s",
        "params", "model_flops_per_step", "achieved_gflops", "peak_rss_mb", "devices")
PAIR_TASK = {"bert": "nsp", "albert": "sop", "roberta": "none", "electra": "none", "distilbert": "none"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="bert-base", help="model preset name (see jaxbert.PRESETS)")
    parser.add_argument("--objective", default="mlm", choices=OBJECTIVES,
                        help="training objective: mlm (default), electra, distill or pkd")
    parser.add_argument("--batch", type=int, default=8, help="global batch size")
    parser.add_argument("--seq", type=int, default=128, help="sequence length")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after one warm-up step)")
    parser.add_argument("--impl", default="jaxbert", choices=IMPLS,
                        help="jaxbert (default) or torch: transformers' PyTorch model (MLM only)")
    parser.add_argument("--teacher", default="", help="distill / pkd: the teacher's preset (random weights)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="compute dtype")
    parser.add_argument("--attention", default="xla", choices=("xla", "dot_product", "cudnn"),
                        help="jaxbert's attention kernel (cudnn: flash attention on NVIDIA GPUs, bf16 only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="write a jax.profiler trace of the timed steps to DIR (view with XProf / TensorBoard's "
                             "profile plugin: xprof --logdir DIR); the timings then include the tracer's overhead")
    parser.add_argument("--corpus", default="", help="time real examples cut from this text corpus (jaxbert only)")
    parser.add_argument("--vocab", default="", help="the tokenizer directory --corpus is cut with")
    parser.add_argument("--pack", default="off", choices=("off", "on"),
                        help="with --corpus: several examples per row, told apart by segment ids")


def max_predictions(seq: int, mask_prob: float = 0.15) -> int:
    """BERT's max_predictions_per_seq for a length: 20 at 128, 77 at 512."""
    return max(1, min(seq, round(seq * mask_prob)))


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def random_batch(config: Any, batch: int, seq: int, pair_task: str, seed: int) -> dict[str, np.ndarray]:
    """Token ids above the special ids, two segments, and a pair label where the family has one."""
    rng = np.random.default_rng(seed)
    out = {"input_ids": rng.integers(999 if config.vocab_size > 1000 else 5, config.vocab_size,
                                     (batch, seq)).astype(np.int32),
           "attention_mask": np.ones((batch, seq), np.int32)}
    if config.type_vocab_size > 1:
        out["token_type_ids"] = np.broadcast_to((np.arange(seq) >= seq // 2).astype(np.int32), (batch, seq)).copy()
    elif config.type_vocab_size == 1:
        out["token_type_ids"] = np.zeros((batch, seq), np.int32)
    if pair_task != "none":
        out[{"nsp": "next_sentence_label", "sop": "sentence_order_label"}[pair_task]] = \
            rng.integers(0, 2, batch).astype(np.int32)
    return out


def _experiment(args: argparse.Namespace) -> Any:
    from jaxbert.config import get_preset
    from jaxbert.train.experiment import pretrain_config

    family = get_preset(args.model).family
    config = pretrain_config({"preset": args.model, "compute_dtype": args.dtype,
                              "attention_kernel": getattr(args, "attention", "xla")}, PAIR_TASK[family])
    config.objective.name = args.objective
    config.objective.max_predictions = max_predictions(args.seq)
    if args.objective == "electra":
        # The original code's generator_hidden_size and masking: 85% [MASK], 15% kept.
        config.objective.update(dict(generator_size=0.25, generator_layers=1.0, mask_replace_prob=0.85,
                                     random_replace_prob=0.0))
    elif args.objective in ("distill", "pkd"):
        config.objective.update(dict(teacher="", teacher_model=teacher_spec(args), teacher_seed=args.seed,
                                     task="mlm", init_layers="none"))
    config.train.update(dict(steps=1000, batch_size=args.batch, seq_len=args.seq, lr=1e-4, warmup_steps=10))
    config.data.pack_examples = getattr(args, "pack", "off") == "on"
    return config


def teacher_spec(args: argparse.Namespace) -> dict[str, Any]:
    """The random teacher of a distillation benchmark: --teacher, else bert-base for a DistilBERT student,
    else the student's own preset at twice its depth (compute dtype and kernel as the student's)."""
    from jaxbert.config import get_preset

    student = get_preset(args.model)
    if args.teacher:
        spec: dict[str, Any] = {"preset": args.teacher}
    elif student.family == "distilbert":
        spec = {"preset": "bert-base"}
    else:
        spec = {"preset": args.model, "num_layers": 2 * student.num_layers}
    return {**spec, "heads": ["mlm"], "pooler": False}


def corpus_batches(args: argparse.Namespace, objective: Any, fields: Any) -> tuple[list[dict[str, np.ndarray]], float]:
    """`args.steps` batches of real examples from `args.corpus` (packed with `--pack on`), and their padding share."""
    from jaxbert.data.corpus import read_documents
    from jaxbert.data.pretraining import ExampleConfig, ExampleStats, create_examples
    from jaxbert.tokenize import load_tokenizer

    if not args.vocab:
        raise JaxbertError("--corpus needs --vocab DIR, the tokenizer to cut the corpus with")
    tokenizer = load_tokenizer(args.vocab)
    fmt = {"nsp": "nsp", "sop": "sop"}.get(getattr(objective, "pair_task", "none"), "full_sentences")
    config = ExampleConfig(format=fmt, max_seq_len=args.seq, seed=args.seed, pack_examples=args.pack == "on",
                           max_examples_per_row=getattr(objective, "packed", 0))
    stats = ExampleStats()
    rows = list(create_examples(read_documents(args.corpus), tokenizer, config, stats))
    need = args.batch * args.steps
    if len(rows) < need:
        raise JaxbertError(f"--corpus gives {len(rows)} rows at --seq {args.seq}, fewer than --batch x --steps = "
                           f"{need}; use a larger corpus or fewer steps")
    batches = []
    for i in range(args.steps):
        chunk = rows[i * args.batch:(i + 1) * args.batch]
        batch = {k: np.stack([r[k] for r in chunk]) for k in chunk[0]}
        batch["attention_mask"] = np.arange(args.seq)[None, :] < batch["length"][:, None]  # rows start at 0
        batches.append({k: batch[k].astype(np.int32) for k in fields})
    return batches, stats.padding_share


def _result(args: argparse.Namespace, times: list[float], compile_s: float, params: int, flops: float,
            devices: int) -> dict[str, Any]:
    median = statistics.median(times)
    return {"impl": args.impl, "model": args.model, "objective": args.objective, "batch": args.batch,
            "seq": args.seq, "dtype": args.dtype, "steps": args.steps, "step_s_median": median,
            "tokens_per_s": args.batch * args.seq / median, "compile_s": compile_s, "params": params,
            "model_flops_per_step": flops, "achieved_gflops": flops / median / 1e9, "peak_rss_mb": peak_rss_mb(),
            "devices": devices}


def bench_jaxbert(args: argparse.Namespace) -> dict[str, Any]:
    """The jaxbert train step: sharded over every device (data parallel), compiled ahead of time."""
    import jax

    from jaxbert.checks import validate_experiment
    from jaxbert.model import count_params
    from jaxbert.objectives.base import build_objective
    from jaxbert.parallel import create_mesh, host_to_global, put_global, replicated
    from jaxbert.train.profile import StepProfiler
    from jaxbert.train.sharded import compile_steps, init_state, objective_optimizer, state_layout
    from jaxbert.train.spec import ProfileSpec

    config = _experiment(args)
    spec = validate_experiment(config, jax.device_count())
    objective = build_objective(config)
    tx, schedule = objective_optimizer(objective, spec.optimizer, spec.train.steps)
    mesh = create_mesh(dict(config.mesh))
    frozen_host = objective.init_frozen()  # a distillation teacher; {} otherwise
    layout = state_layout(objective, tx, mesh, frozen_host)
    frozen = put_global(frozen_host, layout.frozen_shardings) if frozen_host else {}
    state = init_state(objective, tx, layout, jax.random.key(args.seed))
    compiled = compile_steps(objective, tx, schedule, layout, args.batch, args.seq, with_eval=False)
    fields = objective.batch_fields(args.batch, args.seq)
    extra: dict[str, Any] = {}
    if args.corpus:
        hosts, padding = corpus_batches(args, objective, fields)
        extra = {"pack": args.pack, "padding_share": padding}
    else:
        host = random_batch(objective.model_config, args.batch, args.seq, getattr(objective, "pair_task", "none"),
                            args.seed)
        hosts = [{k: host[k] for k in fields}]
    batches = [host_to_global(h, mesh) for h in hosts]
    key = put_global(jax.random.key(args.seed + 1), replicated(mesh))
    state, metrics = compiled.train(state, frozen, batches[0], key)  # warm-up
    jax.block_until_ready(metrics)
    times, real = [], []
    profiler = StepProfiler(ProfileSpec(start_step=1, num_steps=args.steps if args.profile else 0),
                            args.profile or ".")
    try:
        for i in range(1, args.steps + 1):
            batch = batches[(i - 1) % len(batches)]
            start = time.perf_counter()
            with profiler.step(i):
                state, metrics = compiled.train(state, frozen, batch, key)
            jax.block_until_ready((state.params, metrics))
            times.append(time.perf_counter() - start)
            if args.corpus:
                real.append(int(hosts[(i - 1) % len(hosts)]["attention_mask"].sum()))
            profiler.after(i, state)
    finally:
        profiler.stop()
    if not np.isfinite(float(metrics["loss"])):
        raise JaxbertError(f"the benchmark's loss is {float(metrics['loss'])}; the step is broken")
    result = _result(args, times, compiled.compile_s, count_params(state.params),
                     objective.flops_per_step(args.batch, args.seq), jax.device_count())
    if extra:  # real tokens a second: every timed step's non-padding tokens over the time they took
        extra["real_tokens_per_s"] = sum(real) / sum(times)
    return {**result, **extra}


def bench_torch(args: argparse.Namespace) -> dict[str, Any]:
    """transformers' *ForPreTraining / *ForMaskedLM step in PyTorch (CUDA when present, else CPU)."""
    try:
        import torch
        import transformers
    except ImportError as e:
        raise JaxbertError("--impl torch needs torch and transformers: pip install torch transformers") from e
    from jaxbert.config import get_preset
    from jaxbert.interop.hf_config import to_hf_config
    from jaxbert.objectives.mlm import encoder_flops_per_token

    config = _experiment(args)
    family = get_preset(args.model).family
    pair = PAIR_TASK[family]
    model_cfg = get_preset(args.model).replace(compute_dtype="float32", heads=("mlm",) + (() if pair == "none"
                                                                                         else (pair,)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    model = transformers.AutoModelForPreTraining.from_config(to_hf_config(model_cfg)).to(device)
    model.train()
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n or "norm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n or "norm" in n)]
    t = config.train
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=t.lr, betas=(t.b1, t.b2), eps=t.eps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / t.warmup_steps))
    host = random_batch(model_cfg, args.batch, args.seq, pair, args.seed)
    batch = {k: torch.tensor(v, dtype=torch.long, device=device) for k, v in host.items()}
    mask_id, vocab = 103 if model_cfg.vocab_size > 103 else 4, model_cfg.vocab_size
    generator = torch.Generator(device=device).manual_seed(args.seed)
    hf_pair = {"nsp": "next_sentence_label", "sop": "sentence_order_label"}.get(pair)

    def step() -> float:
        ids = batch["input_ids"]
        # HF DataCollatorForLanguageModeling's dynamic masking: 15% selected, 80% [MASK], 10% random.
        selected = torch.rand(ids.shape, generator=generator, device=device) < 0.15
        labels = torch.where(selected, ids, torch.full_like(ids, -100))
        action = torch.rand(ids.shape, generator=generator, device=device)
        inputs = torch.where(selected & (action < 0.8), torch.full_like(ids, mask_id), ids)
        random_ids = torch.randint(vocab, ids.shape, generator=generator, device=device)
        inputs = torch.where(selected & (action >= 0.8) & (action < 0.9), random_ids, inputs)
        kwargs = {"input_ids": inputs, "attention_mask": batch["attention_mask"], "labels": labels}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        if hf_pair:
            kwargs[hf_pair] = batch[[k for k in batch if k.endswith("_label")][0]]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bfloat16"):
            loss = model(**kwargs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.clip_norm)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    start = time.perf_counter()
    step()  # warm-up (allocations, kernels): torch's nearest thing to a compile
    warmup = time.perf_counter() - start
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    if not np.isfinite(loss):
        raise JaxbertError(f"the torch benchmark's loss is {loss}; the step is broken")
    cfg = model_cfg
    # transformers' heads run the vocabulary projection at every position.
    head = 2 * cfg.hidden_size * cfg.embed_dim + 2 * cfg.embed_dim * cfg.vocab_size
    pooled = (2 * cfg.hidden_size * cfg.hidden_size + 4 * cfg.hidden_size) if pair != "none" else 0
    flops = 3.0 * args.batch * (args.seq * (encoder_flops_per_token(cfg, args.seq) + head) + pooled)
    params = sum(p.numel() for p in model.parameters())
    return _result(args, times, warmup, int(params), flops, 1)


def run(args: argparse.Namespace) -> int:
    if args.batch <= 0 or args.seq <= 0 or args.steps <= 0:
        raise JaxbertError("--batch, --seq and --steps must be positive integers")
    if args.impl == "torch" and args.objective != "mlm":
        raise JaxbertError(f"--impl torch runs transformers' MLM pretraining step only; benchmark --objective "
                           f"{args.objective} with --impl jaxbert, or compare --objective mlm")
    if args.profile and args.impl != "jaxbert":
        raise JaxbertError("--profile traces jaxbert's step with jax.profiler; drop it for --impl torch "
                           "(torch.profiler traces PyTorch)")
    if args.impl != "jaxbert" and (args.corpus or args.pack == "on"):
        raise JaxbertError("--corpus and --pack time jaxbert only; drop them for --impl torch")
    result = bench_jaxbert(args) if args.impl == "jaxbert" else bench_torch(args)
    extra = [k for k in ("pack", "padding_share", "real_tokens_per_s") if k in result]
    print(json.dumps({k: result[k] for k in (*KEYS, *extra)}))
    return 0

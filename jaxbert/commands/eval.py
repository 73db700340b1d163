"""`jaxbert eval`: a fine-tuned model's official task metrics on a data file, as one JSON line.

    jaxbert eval --model PATH --task sst2 --data FILE [--max-examples N]

PATH is a fine-tuning workdir (its best model), a jaxbert bundle, or a Hugging Face task model
directory. Bad rows stop with one line naming the file and line (or question id); with
--on-error skip they are dropped and counted on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="fine-tuning workdir, jaxbert bundle or HF task model dir")
    parser.add_argument("--task", required=True, help="sst2, cola, mrpc, stsb, qqp, mnli, qnli, rte, wnli, "
                                                       "squad_v1, squad_v2, conll2003, zh_sentiment or zh_ner")
    parser.add_argument("--data", required=True, help="the task's data file (GLUE TSV, SQuAD JSON, CoNLL text, "
                                                      "PKU word/tag text for zh_ner)")
    parser.add_argument("--max-examples", type=int, default=0, help="score only the first N examples (0 = all)")
    parser.add_argument("--max-length", type=int, default=0,
                        help="tokens per input (0 = the length the model was fine-tuned with, else 128 / 384 SQuAD)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--on-error", default="raise", choices=("raise", "skip"), help="what bad rows do")


def run(args: argparse.Namespace) -> int:
    from jaxbert.finetune.evaluate import evaluate_file, load_task_model

    if args.max_examples < 0:
        from jaxbert.errors import JaxbertError

        raise JaxbertError(f"--max-examples={args.max_examples}: give a count >= 0 (0 = all)")
    model = load_task_model(args.model)
    metrics, skipped = evaluate_file(model, args.task, args.data, max_examples=args.max_examples,
                                     max_length=args.max_length, batch_size=args.batch_size, on_error=args.on_error)
    if skipped:
        print(f"jaxbert eval: skipped {dict(skipped)}", file=sys.stderr)
    print(json.dumps(metrics))
    return 0

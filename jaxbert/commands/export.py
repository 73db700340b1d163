"""`jaxbert export`: a model or fine-tuned task model as a serving artifact (StableHLO, ONNX or SavedModel).

    jaxbert export --model PATH --format stablehlo|onnx|saved_model --out DIR

PATH is anything `jaxbert.load` opens (bundle, HF dir, Hub name, TF checkpoint, training or fine-tuning
workdir). DIR gets the model file, serving.json (its signature), a README of inputs and outputs, and the
tokenizer files (docs/ecosystem.md).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jaxbert.interop.serving import FORMATS

    parser.add_argument("--model", required=True,
                        help="bundle, HF dir, Hub name hf://org/name[@revision], TF checkpoint, or training / "
                             "fine-tuning workdir (local or gs://)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="stablehlo: jax.export's serialized program (run with jax.export.deserialize); "
                             "onnx: an ONNX graph (onnxruntime), needs jax2onnx; saved_model: a TensorFlow "
                             "SavedModel (jax2tf), needs the tf extra")
    parser.add_argument("--out", required=True, help="output directory (local or gs://); must not exist or be empty")
    parser.add_argument("--part", default=None, choices=("discriminator", "generator"),
                        help="ELECTRA workdir or TF checkpoint: which model to export (default: discriminator)")


def run(args: argparse.Namespace) -> int:
    import jaxbert
    from jaxbert.interop.serving import export_model, input_names, output_names

    model = jaxbert.load(args.model, part=args.part)
    out = export_model(model.config, model.params, args.out, args.format, tokenizer_dir=model._tokenizer_dir,
                       tokenizer=model.tokenizer, label_names=model.label_names, source=str(args.model))
    print(f"wrote {args.format} export of {model.config.family} ({', '.join(input_names(model.config))} -> "
          f"{', '.join(output_names(model.config))}) to {out}")
    return 0

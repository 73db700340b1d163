"""Every on-disk model format in one place, below the face: open any supported path, write bundles, read workdirs.

    open_model(path)  -> LoadedModel(config, params, tokenizer_dir, ...)   bundle | HF dir | workdir
    write_bundle(target, config, params, tokenizer_dir=...)               marker-committed, local or gs://
    export_hf(target, config, params, tokenizer_dir=...)                  a directory transformers loads

`api.Pretrained`, the distillation teacher, fine-tuning's start and best-model keeping, and the
pretraining pipeline all read and write models through this package; it is the only importer of
`jaxbert.interop` (the Hugging Face name tables).
"""

from jaxbert.formats.bundle import BUNDLE_FILE, is_bundle, read_bundle, write_bundle
from jaxbert.formats.hf import export_hf, is_hf_dir
from jaxbert.formats.model import LoadedModel
from jaxbert.formats.open import open_model
from jaxbert.formats.workdir import (
    BEST_DIR,
    CHECKPOINT_DIR,
    TASK_FILE,
    TOKENIZER_DIR,
    TRAIN_FORMAT,
    WorkdirError,
    is_workdir,
    latest_complete_step,
    load_training_params,
    read_best,
    read_checkpoint_meta,
    read_task_info,
    read_workdir,
)
from jaxbert.tokenize.files import TOKENIZER_FILES, copy_tokenizer_files, write_tokenizer_dir

__all__ = ["BEST_DIR", "BUNDLE_FILE", "CHECKPOINT_DIR", "TASK_FILE", "TOKENIZER_DIR", "TOKENIZER_FILES",
           "TRAIN_FORMAT", "LoadedModel", "WorkdirError", "copy_tokenizer_files", "export_hf", "is_bundle",
           "is_hf_dir", "is_workdir", "latest_complete_step", "load_training_params", "open_model", "read_best",
           "read_bundle", "read_checkpoint_meta", "read_task_info", "read_workdir", "write_bundle",
           "write_tokenizer_dir"]

#!/usr/bin/env bash
# The reference environment: transformers 4.57 (the last release with the TF-checkpoint loaders
# load_tf_weights_in_{bert,albert,electra} and the Flax models) + TensorFlow (CPU) + torch 2.13.0 (CPU),
# in its own virtual env, because transformers 5 (the project's test extra) dropped both. It also holds
# jaxbert's own dependencies (jax, flax, orbax ...): with TensorFlow beside them it is the `tf` extra's
# environment, where `jaxbert export --format saved_model` runs (tests/test_serving_export.py).
#
#   bash tests/reference_env.sh            # creates .ref-venv at the repository root (idempotent)
#   JAXBERT_REF_VENV=/path bash tests/reference_env.sh
#
# Tests that compare against it run `.ref-venv/bin/python tests/reference/<script>.py` in a subprocess
# and skip, naming this script, when the environment is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${JAXBERT_REF_VENV:-.ref-venv}
PY=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import tensorflow, transformers, torch, jax, flax, orbax.checkpoint" 2>/dev/null; then
  echo "reference environment ready: $VENV"
  exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "torch==2.13.0" "transformers==4.57.*" "tensorflow-cpu==2.21.*"
"$VENV/bin/python" -m pip install -q -e .  # jaxbert's dependencies; tests put the tree under test on PYTHONPATH
"$VENV/bin/python" -c "import tensorflow as tf, transformers, torch; print('reference environment ready:', \
'tensorflow', tf.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__)"

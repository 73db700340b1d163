"""Training: optax optimizers and schedules, the train state, jitted steps, the one generic loop
(jaxbert.train.loop.train), Orbax checkpoints (jaxbert.train.checkpoint) and experiment configs
(jaxbert.train.experiment). Submodules are imported on use: checkpointing pulls in Orbax and grain."""

"""Fine-tuning glue between task data and the train loop: tasks, batches, prediction, best-model keeping."""

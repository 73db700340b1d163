"""Experiments that reproduce analyses of the BERT-family papers (e.g. the feature-based NER study)."""

"""Checkpoint formats mapped onto the model's param tree.

hf: Hugging Face save_pretrained directories (load_hf, export_hf, is_hf_dir, to_hf_config), built from
hf_names (per-family key tables), hf_convert (tensor layouts), hf_config (config.json fields) and
hf_files (reading/writing the files). param_table: docs/param_counts.md.
"""

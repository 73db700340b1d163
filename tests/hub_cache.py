"""A Hugging Face Hub cache laid out by huggingface_hub's own cache functions, from files on disk (no network).

    python tests/hub_cache.py HF_HOME REPO_ID SOURCE_DIR REVISION COMMIT [LISTED_ONLY ...]

writes HF_HOME/hub/models--org--name/{blobs,snapshots/COMMIT,refs/REVISION} as `snapshot_download` leaves them,
and the commit's tree listing (huggingface_hub >= 2: `trees/COMMIT.json`) with every file plus LISTED_ONLY
names: files the repo holds on the Hub that were never downloaded (e.g. pytorch_model.bin).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def populate(hf_home: str, repo_id: str, source: str, revision: str, commit: str,
             listed_only: tuple[str, ...] = ()) -> Path:
    from huggingface_hub import file_download

    storage = Path(hf_home) / "hub" / file_download.repo_folder_name(repo_id=repo_id, repo_type="model")
    snapshot = storage / "snapshots" / commit
    entries = {}
    for file in sorted(Path(source).rglob("*")):
        if not file.is_file():
            continue
        rel = file.relative_to(source).as_posix()
        data = file.read_bytes()
        blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's object id
        sha256 = hashlib.sha256(data).hexdigest()
        blob = storage / "blobs" / sha256
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
        file_download._create_symlink(str(blob), str(snapshot / rel), new_blob=False)
        entries[rel] = (len(data), blob_id, sha256)
    for rel in listed_only:
        entries[rel] = (1000, hashlib.sha1(rel.encode()).hexdigest(), hashlib.sha256(rel.encode()).hexdigest())
    file_download._cache_commit_hash_for_specific_revision(str(storage), revision, commit)
    try:
        from huggingface_hub import _tree_cache
    except ImportError:  # huggingface_hub < 2 keeps no tree listings
        return snapshot
    _tree_cache.write_tree_cache(str(storage), commit, {
        rel: _tree_cache.TreeCacheEntry(size=size, blob_id=blob_id, lfs_sha256=sha, lfs_size=size)
        for rel, (size, blob_id, sha) in entries.items()})
    return snapshot


if __name__ == "__main__":
    home, repo, src, rev, sha, *listed = sys.argv[1:]
    os.environ["HF_HOME"] = home
    print(populate(home, repo, src, rev, sha, tuple(listed)))

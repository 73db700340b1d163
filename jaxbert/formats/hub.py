"""Hugging Face Hub names: `hf://org/name[@revision]` resolved to a local snapshot, and directories pushed there.

The Hub's own client (`huggingface_hub.snapshot_download`) does the work, so its cache and settings hold as
everywhere else: `HF_HOME` / `HF_HUB_CACHE` say where the cache lives, `HF_HUB_OFFLINE=1` reads only it,
`HF_TOKEN` opens private repos. Only the files jaxbert reads are fetched: the config, safetensors weights,
tokenizer files (and a jaxbert bundle's files). Pickled PyTorch weights (`pytorch_model.bin`) run code when
read, so they are fetched only when asked (`JAXBERT_HUB_ALLOW_PICKLE=1`).
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxbert.errors import JaxbertError
from jaxbert.tokenize.files import TOKENIZER_FILES

SCHEME = "hf://"
ALLOW_PICKLE_ENV = "JAXBERT_HUB_ALLOW_PICKLE"
# What a model repo may hold that jaxbert reads: HF configs and safetensors weights (sharded too), tokenizer
# files, a jaxbert bundle (its marker, params and task info) and Google's TF configs.
READ_PATTERNS = ("config.json", "*.safetensors", "model.safetensors.index.json", *TOKENIZER_FILES,
                 "jaxbert.json", "params/*", "task.json")
PICKLE_PATTERNS = ("pytorch_model.bin", "pytorch_model*.bin", "pytorch_model.bin.index.json")


class HubError(JaxbertError):
    """A Hub name cannot be resolved (not cached offline, no such repo or revision, no safetensors)."""


def is_hub_name(p: str | os.PathLike | None) -> bool:
    """True for `hf://org/name[@revision]`."""
    return p is not None and os.fspath(p).startswith(SCHEME)


def parse(name: str | os.PathLike) -> tuple[str, str | None]:
    """(repo_id, revision) of `hf://org/name[@revision]`; a one-line error for anything else."""
    text = os.fspath(name)
    body = text[len(SCHEME):]
    repo_id, _, revision = body.partition("@")
    parts = repo_id.split("/")
    if not is_hub_name(text) or not all(parts) or len(parts) > 2 or (revision == "" and "@" in body):
        raise HubError(f"{text}: not a Hub name; write hf://org/name or hf://org/name@revision")
    return repo_id, revision or None


def allow_pickle() -> bool:
    return os.environ.get(ALLOW_PICKLE_ENV, "").lower() in ("1", "true", "yes")


def patterns() -> list[str]:
    """The allow_patterns of a download: what jaxbert reads, pickles only when asked."""
    return [*READ_PATTERNS, *(PICKLE_PATTERNS if allow_pickle() else ())]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def resolve(name: str | os.PathLike) -> Path:
    """The local snapshot directory of a Hub name, downloaded (only the files jaxbert reads) if not cached."""
    import huggingface_hub
    from huggingface_hub import errors

    repo_id, revision = parse(name)
    text = os.fspath(name)
    try:
        folder = Path(huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns()))
    except errors.RevisionNotFoundError:
        raise HubError(f"{text}: the Hub repo {repo_id} has no revision {revision!r}; check the branch, tag "
                       "or commit") from None
    except (errors.RepositoryNotFoundError, errors.GatedRepoError) as e:
        raise HubError(f"{text}: the Hub repo {repo_id} does not exist or is not open to this account "
                       f"({type(e).__name__}); check the name, or log in (`hf auth login` / HF_TOKEN)") from None
    except getattr(errors, "IncompleteSnapshotError", ()) as e:  # huggingface_hub >= 1.x
        raise HubError(f"{text}: the cached snapshot misses files jaxbert reads and the Hub cannot be reached "
                       f"({_first_line(e)})") from None
    except errors.LocalEntryNotFoundError:
        where = huggingface_hub.constants.HF_HUB_CACHE
        if _offline():
            raise HubError(f"{text}: not in the Hugging Face cache {where} and HF_HUB_OFFLINE=1 forbids "
                           "downloading it; unset HF_HUB_OFFLINE, or download it once where the Hub is reachable "
                           "(same HF_HOME)") from None
        raise HubError(f"{text}: the Hub cannot be reached and it is not in the cache {where}; check the "
                       "network, or set HF_HOME to a cache that holds it") from None
    except errors.HfHubHTTPError as e:
        raise HubError(f"{text}: the Hub refused the download ({_first_line(e)})") from None
    _check_weights(folder, text)
    return folder


def _check_weights(folder: Path, text: str) -> None:
    """A snapshot with no safetensors (only a pickle on the Hub, not fetched) gets a one-line answer."""
    if (folder / "jaxbert.json").is_file() or any(folder.glob("*.safetensors")):
        return
    if allow_pickle() and any(folder.glob("pytorch_model*.bin")):
        return
    if not (folder / "config.json").is_file():
        raise HubError(f"{text}: the snapshot {folder} holds no config.json or jaxbert.json; is it a model repo?")
    raise HubError(f"{text}: the repo has no safetensors weights, and pickled PyTorch weights (pytorch_model.bin) "
                   f"are not fetched unless asked; set {ALLOW_PICKLE_ENV}=1 to read them (they run code when "
                   "unpickled: only for repos you trust)")


def push(directory: str | os.PathLike, repo_id: str, private: bool = False, revision: str | None = None,
         message: str | None = None) -> str:
    """Upload a local model directory (an HF dir or a jaxbert bundle) to the Hub repo `repo_id` (created if
    needed); returns the commit URL. Needs a token (`hf auth login` or HF_TOKEN) and the network."""
    import huggingface_hub

    repo_id = repo_id[len(SCHEME):] if is_hub_name(repo_id) else repo_id
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts):
        raise HubError(f"--push-to-hub {repo_id}: give the repo as org/name (or user/name)")
    if _offline():
        raise HubError(f"--push-to-hub {repo_id}: HF_HUB_OFFLINE=1 forbids uploading; unset it to push")
    api = huggingface_hub.HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=os.fspath(directory), revision=revision,
                             commit_message=message or "Upload model converted with jaxbert")
    return str(getattr(info, "commit_url", info))


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

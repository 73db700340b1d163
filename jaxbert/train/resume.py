"""A resumed run must be the run the workdir holds: its saved config against the new one, field by field.

The saved config is WORKDIR/config.json (written by each run once this check passed), else the latest
checkpoint's record of it. Every field must be equal except the ones in SAFE_TO_CHANGE (how long to
train, how the schedule ends, how often to log / evaluate / save, how to recover from NaNs, the mesh
and process layout); a field may be accepted explicitly with `--config.resume.allow_changes=a.b,c`
(a section name accepts all its fields). Model fields are compared as the resolved ModelConfig, so a
preset name and the same fields spelled out are equal. A field the saved config lacks (it was added
to jaxbert later) is not compared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from jaxbert import storage
from jaxbert.config import ConfigError
from jaxbert.errors import JaxbertError

log = logging.getLogger(__name__)

RUN_CONFIG_FILE = "config.json"

# Fields (or whole sections) a resumed run may change without asking; listed in the README.
SAFE_TO_CHANGE = (
    "train.steps", "train.epochs", "train.end_lr",  # how long to train, where the schedule ends
    "train.log_every", "train.eval_every", "train.eval_batches", "train.progress",  # cadence and display
    "train.nan_policy", "train.max_consecutive_skips",  # recovering from a divergence
    "checkpoint",  # every, keep, keep_every, async_save, restore_step
    "resume", "mesh", "distributed",  # restore reshards onto any mesh / process count
    "log", "profile",  # where metrics go (trackers) and which steps are traced
    "data.reader_threads", "eval.batch_size",  # speed only
)


ABSENT = object()  # a field the new config no longer has


class ResumeConfigError(JaxbertError):
    """The new config differs from the workdir's in fields that must not change on resume."""


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} of a nested config; `model` as the fields of the ModelConfig it resolves to."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if name == "model":
            value = _model_fields(value)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = json.loads(json.dumps(value, default=str))  # tuples as lists, as saved
    return out


def _model_fields(spec: Any) -> Any:
    from jaxbert.config import resolve_model_config

    try:
        return resolve_model_config(dict(spec) if isinstance(spec, Mapping) else spec).to_dict()
    except Exception:  # an unresolvable record is compared as written
        return spec


def _covered(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def parse_allowed(text: str | Iterable[str]) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(i.strip().removeprefix("config.") for i in items if i.strip())


def config_changes(saved: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, saved value, new value) of every field that differs and is not safe to change."""
    before, after = flatten(saved), flatten(new)
    changes = []
    for name in sorted(before):
        if _covered(name, SAFE_TO_CHANGE):
            continue
        now = after.get(name, ABSENT)
        if before[name] != now:
            changes.append((name, before[name], now))
    return changes


def saved_run_config(workdir: storage.PathLike) -> dict[str, Any] | None:
    """The config the workdir's last run recorded (config.json, else its latest checkpoint's), or None."""
    from jaxbert.formats.workdir import WorkdirError, is_workdir, read_checkpoint_meta

    directory = storage.path(workdir)
    file = directory / RUN_CONFIG_FILE
    if file.is_file():
        try:
            saved = json.loads(file.read_text())
        except (OSError, ValueError) as e:
            raise ResumeConfigError(f"{storage.display(file)} is unreadable ({storage._first_line(e)}); restore it "
                                    "from the latest checkpoint's config or choose a new --workdir") from None
        return saved if isinstance(saved, dict) else None
    if is_workdir(directory):
        try:
            return dict(read_checkpoint_meta(directory)[1].get("experiment") or {}) or None
        except WorkdirError:
            return None
    return None


def check_resume(workdir: storage.PathLike, experiment: Mapping[str, Any], allow: str | Iterable[str] = ""
                 ) -> list[str]:
    """Refuse (one line naming each field and its two values) a config that differs from the workdir's in a
    field that must stay; returns the accepted changes (logged). A workdir with no saved config passes."""
    saved = saved_run_config(workdir)
    if saved is None:
        return []
    allowed = parse_allowed(allow)
    known = set(flatten(saved)) | set(flatten(experiment))
    for entry in allowed:
        if not any(_covered(name, (entry,)) for name in known):
            raise ConfigError(f"config.resume.allow_changes: {entry!r} names no config field; spell it as in "
                              "--config.a.b overrides, e.g. model.hidden_act")
    changes = config_changes(saved, experiment)
    refused = [c for c in changes if not _covered(c[0], allowed)]
    if refused:
        listed = "; ".join(f"config.{name}: {_show(old)} in the workdir, {_show(new)} now"
                           for name, old, new in refused)
        fields = ",".join(name for name, _, _ in refused)
        raise ResumeConfigError(
            f"{storage.display(workdir)} holds a run with another config, and resuming would mix the two: {listed}. "
            f"Resume with the workdir's values, choose a new --workdir, or accept the change with "
            f"--config.resume.allow_changes={fields} (safe to change without it: {', '.join(SAFE_TO_CHANGE)})")
    accepted = [name for name, _, _ in changes]
    for name, old, new in changes:
        log.warning("resuming with config.%s changed from %s to %s (config.resume.allow_changes)", name,
                    _show(old), _show(new))
    return accepted


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."

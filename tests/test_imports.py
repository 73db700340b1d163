"""The import rules of docs/architecture.md, read from the source: every `import jaxbert...` of every module
(function-level imports included) must point the way the layers do."""

from __future__ import annotations

import ast
from pathlib import Path

JAXBERT = Path(__file__).resolve().parents[1] / "jaxbert"

# The face: what users call; nothing else may import it.
FACE = ("jaxbert.api", "jaxbert.cli", "jaxbert.commands", "jaxbert.quickstart", "jaxbert.experiments")
# Each package (or module) and the first-party packages it may import besides itself. Imports point one way:
# a package listed here never imports one that lists it.
ALLOWED = {
    "jaxbert.errors": (),
    "jaxbert.config": ("jaxbert.errors",),
    "jaxbert.storage": ("jaxbert.errors",),
    "jaxbert.logs": (),
    "jaxbert.lock": ("jaxbert.errors", "jaxbert.storage"),
    "jaxbert.evaluate": ("jaxbert.errors",),
    "jaxbert.model": ("jaxbert.config", "jaxbert.errors"),
    "jaxbert.parallel": ("jaxbert.config", "jaxbert.errors"),
    "jaxbert.tokenize": ("jaxbert.errors", "jaxbert.storage", "jaxbert.data.corpus", "jaxbert.data.segmenters"),
    "jaxbert.data": ("jaxbert.errors", "jaxbert.storage", "jaxbert.tokenize", "jaxbert.config"),
    # Running a loaded model (bucketed shapes, pooling, fill-mask): what api.Pretrained delegates to.
    "jaxbert.inference": ("jaxbert.errors", "jaxbert.config", "jaxbert.model"),
    "jaxbert.interop": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.tokenize", "jaxbert.storage"),
    "jaxbert.formats": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.tokenize", "jaxbert.storage",
                        "jaxbert.interop", "jaxbert.logs"),
    "jaxbert.train": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.parallel", "jaxbert.storage",
                      "jaxbert.formats", "jaxbert.lock", "jaxbert.logs"),
    "jaxbert.objectives": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.data", "jaxbert.tokenize",
                           "jaxbert.storage", "jaxbert.formats", "jaxbert.train.objective", "jaxbert.parallel"),
    "jaxbert.checks": ("jaxbert.errors", "jaxbert.config", "jaxbert.objectives", "jaxbert.train",
                       "jaxbert.parallel"),
    # Ahead-of-time compiles for TPU topologies: the run's objective, optimizer and step without data.
    "jaxbert.aot": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.tokenize", "jaxbert.objectives",
                    "jaxbert.train", "jaxbert.parallel", "jaxbert.checks", "jaxbert.formats", "jaxbert.finetune"),
    # The pipelines: libraries below the face that put the layers together.
    "jaxbert.pretrain": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.data", "jaxbert.tokenize",
                         "jaxbert.storage", "jaxbert.formats", "jaxbert.train", "jaxbert.objectives",
                         "jaxbert.parallel", "jaxbert.checks"),
    "jaxbert.finetune": ("jaxbert.errors", "jaxbert.config", "jaxbert.model", "jaxbert.data", "jaxbert.tokenize",
                         "jaxbert.storage", "jaxbert.formats", "jaxbert.train", "jaxbert.objectives",
                         "jaxbert.parallel", "jaxbert.checks", "jaxbert.evaluate"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(JAXBERT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(source: str) -> list[str]:
    """Every jaxbert module a source imports, anywhere in it (`from jaxbert import x` counts as jaxbert.x)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "jaxbert"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jaxbert":
            if node.module == "jaxbert":
                found += [f"jaxbert.{a.name}" for a in node.names]
            else:
                found.append(node.module)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def rule_for(module: str) -> tuple[str, tuple[str, ...]] | None:
    """The most specific ALLOWED entry covering `module` (None: the face, or the package root)."""
    owners = [p for p in ALLOWED if _within(module, p)]
    if not owners:
        return None
    owner = max(owners, key=len)
    return owner, ALLOWED[owner]


def violations(module: str, imports: list[str]) -> list[str]:
    """The imports of `module` that break the rules: a face module from below the face, or a package its
    layer may not import."""
    rule = rule_for(module)
    bad = []
    for name in imports:
        if name == "jaxbert":
            name = "jaxbert.__init__"
        if any(_within(name, face) for face in FACE) and not any(_within(module, face) for face in FACE):
            bad.append(f"{module} imports the face module {name}")
            continue
        if rule is None:
            continue
        owner, allowed = rule
        if _within(name, owner) or any(_within(name, a) for a in allowed):
            continue
        if name in ("jaxbert.__init__",):
            bad.append(f"{module} imports the package root (which exposes the face)")
            continue
        bad.append(f"{module} ({owner}) imports {name}, outside its layer")
    return bad


def test_every_module_imports_only_what_its_layer_may():
    problems = []
    for path in sorted(JAXBERT.rglob("*.py")):
        module = module_name(path)
        problems += violations(module, first_party_imports(path.read_text(encoding="utf-8")))
    assert not problems, "\n".join(problems)


def test_the_checker_catches_forbidden_imports():
    # The rules as the architecture states them, on imports a careless change would add.
    assert violations("jaxbert.model.attention", ["jaxbert.train.loop"])  # the model imports no train code
    assert violations("jaxbert.model.heads", ["jaxbert.data.masking"])  # ... and no data code
    assert violations("jaxbert.train.loop", ["jaxbert.objectives.mlm"])  # train imports no objective
    assert violations("jaxbert.train.step", ["jaxbert.interop.hf"])  # nor interop
    assert violations("jaxbert.objectives.teacher", ["jaxbert.api"])  # nothing below the face imports it
    assert violations("jaxbert.finetune.best", ["jaxbert.commands.pretrain"])
    assert violations("jaxbert.objectives.teacher", ["jaxbert"])  # `import jaxbert` reaches the face too
    assert violations("jaxbert.tokenize.load", ["jaxbert.model"])  # tokenizers know no model
    assert violations("jaxbert.parallel.sharding", ["jaxbert.model.params"])  # parallel knows no model
    assert violations("jaxbert.objectives.mlm", ["jaxbert.train.loop"])  # objectives see only the interface
    assert violations("jaxbert.data.loader", ["jaxbert.interop.hf"])  # only formats imports interop
    # ... and the allowed directions pass.
    assert not violations("jaxbert.objectives.mlm", ["jaxbert.train.objective", "jaxbert.model", "jaxbert.data"])
    assert not violations("jaxbert.api", ["jaxbert.formats", "jaxbert.model", "jaxbert.commands"])
    assert not violations("jaxbert.formats.hf", ["jaxbert.interop.hf_tasks"])
    assert first_party_imports("def f():\n    from jaxbert import formats, storage\n    import jaxbert.api\n") == [
        "jaxbert.formats", "jaxbert.storage", "jaxbert.api"]

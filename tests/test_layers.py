"""The import graph follows the layers of docs/architecture.md; the client loads without torch.

models → pipeline → session → server → commands (and cli.py) import only downward (or within their layer).
``protocol`` and ``media`` are leaves beside that stack: they import only the base modules (errors, codes, types)
and are imported only by their users (server, client, commands). The client imports only protocol, media and
the base modules. Every edge counts, also imports inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ltx2stream"

BASE = "base"  # ltx2stream/__init__.py, errors.py, codes.py, types.py: importable by every layer
STACK = ("models", "pipeline", "session", "server", "commands")
# Which layers each layer may import (besides itself and BASE).
ALLOWED: dict[str, frozenset[str]] = {
    "models": frozenset(),
    "pipeline": frozenset({"models"}),
    "session": frozenset({"models", "pipeline", "parallel"}),
    "server": frozenset({"models", "pipeline", "session", "media", "protocol"}),
    "commands": frozenset(
        {
            "models",
            "pipeline",
            "session",
            "server",
            "media",
            "protocol",
            "client",
            "world",
            "parallel",
            "pocket",
        }
    ),
    "parallel": frozenset({"models"}),  # sequence parallelism for the DiT (docs/deploy.md), beside models
    "media": frozenset(),
    "protocol": frozenset(),
    "client": frozenset({"media", "protocol"}),
    "world": frozenset(),  # procedural test worlds (numpy only), see docs/quality.md
    "quality": frozenset({"world"}),  # scorers that read only pixels and samples (numpy only)
    # training of the pocket model (docs/pocket.md); its evaluations read frames with the quality scorers
    "pocket": frozenset({"models", "world", "quality"}),
    BASE: frozenset(),
}
# Layers that must not import torch (or packages built on it), not even lazily.
TORCH_FREE = frozenset({BASE, "media", "protocol", "client", "world", "quality"})
TORCH_SIDE = ("torch", "safetensors.torch", "transformers", "torchaudio", "torchvision")
# Known edges against the layering that another change of issue #10 removes; each must still exist.
PENDING: dict[tuple[str, str], str] = {}


def layer_of(module: str) -> str:
    """The layer of a dotted ``ltx2stream`` module name."""
    parts = module.split(".")
    assert parts[0] == "ltx2stream", module
    if len(parts) == 1 or parts[1] in ("errors", "codes", "types", "__init__"):
        return BASE
    if parts[1] == "cli":
        return "commands"
    if parts[1] not in ALLOWED:
        raise AssertionError(
            f"{module}: package {parts[1]!r} has no layer; declare it in tests/test_layers.py and "
            "docs/architecture.md"
        )
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every module that ``source`` (module ``module``) imports, as absolute names.

    ``from pkg import name`` yields ``pkg`` and, for ``pkg == "ltx2stream"``, also ``ltx2stream.name``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
            found += [f"{base}.{a.name}" for a in node.names if base == "ltx2stream"]
    return found


def edges() -> list[tuple[str, str, str]]:
    """(file, importing layer, imported module) for every import of every module of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        name = module_name(path)
        targets = imports_in(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py")
        out += [(rel, layer_of(name), target) for target in targets]
    return out


def violations(graph: list[tuple[str, str, str]]) -> list[str]:
    """The edges of ``graph`` against the layer rules, one line each."""
    found: list[str] = []
    for rel, src, target in graph:
        if target.split(".")[0] == "ltx2stream":
            dst = layer_of(target)
            if dst not in (src, BASE) and dst not in ALLOWED[src] and (rel, dst) not in PENDING:
                found.append(f"{rel} ({src}) imports {target} ({dst})")
        elif src in TORCH_FREE and any(target == t or target.startswith(t + ".") for t in TORCH_SIDE):
            found.append(f"{rel} ({src}) imports {target}, but {src} must not need torch")
    return found


def test_imports_follow_the_layers():
    """No module imports a layer above it or beside it; leaves and the client stay torch-free."""
    found = violations(edges())
    assert not found, "\n".join(found)


def test_pending_exceptions_still_exist():
    """Each listed exception is a real edge (remove it from PENDING once the edge is gone)."""
    real = {(rel, layer_of(t)) for rel, _, t in edges() if t.split(".")[0] == "ltx2stream"}
    assert set(PENDING) <= real, set(PENDING) - real


def test_layer_rules_catch_wrong_edges():
    """Upward, sideways, lazy, relative and torch imports of a leaf are each reported."""
    source = (
        "import numpy\n"
        "import torch\n"
        "from ltx2stream import codes, protocol as P\n"
        "from ..session import store\n"
        "def f():\n"
        "    from ltx2stream.server.app import StreamingServer\n"
    )
    rel = "ltx2stream/media/probe.py"
    graph = [(rel, "media", t) for t in imports_in(source, "ltx2stream.media.probe")]
    found = violations(graph)
    assert len(found) == 4, found
    for what in ("torch", "ltx2stream.protocol", "ltx2stream.session", "ltx2stream.server.app"):
        assert any(f"imports {what}" in line for line in found), what
    assert violations([("ltx2stream/server/x.py", "server", "ltx2stream.session.store")]) == []
    assert violations([("ltx2stream/client/x.py", "client", "ltx2stream.pipeline.presets")])


def test_every_package_has_a_layer():
    """Each subpackage and top-level module of ltx2stream maps to a declared layer."""
    for path in PACKAGE.iterdir():
        if path.name.startswith(("_", ".")) and path.name != "__init__.py":
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            layer_of(f"ltx2stream.{path.name}")
        elif path.suffix == ".py":
            layer_of(f"ltx2stream.{path.stem}")


def test_importing_the_client_loads_no_torch():
    """``python -X importtime -c "import ltx2stream.client"`` imports neither torch nor a torch-side layer."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import ltx2stream.client"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert "ltx2stream.client" in loaded
    assert not {m for m in loaded if m == "torch" or m.startswith("torch.")}
    for layer in ("models", "pipeline", "session", "server", "commands"):
        assert not {m for m in loaded if m.startswith(f"ltx2stream.{layer}")}, layer


def test_docs_name_every_package():
    """The README layout table and docs/architecture.md name every package of the tree."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert [p for p in packages if f"`ltx2stream/{p}/`" not in readme] == []
    assert [p for p in packages if f"{p}/" not in architecture] == []

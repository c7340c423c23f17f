"""Import a baseline commit's ``ltx2stream`` next to this tree's, under the name ``ltx2stream_baseline``.

``git archive <commit> ltx2stream`` is unpacked into a temporary folder and every ``ltx2stream`` import in it is
renamed, so old and new code run in one process on the same inputs (interleaved timings, bitwise comparisons).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
NAME = "ltx2stream_baseline"


def import_baseline(commit: str, modules: tuple[str, ...] = (), under: Path | None = None) -> ModuleType:
    """The baseline package (imported as ``ltx2stream_baseline``) with ``modules`` (e.g. "pipeline.presets")
    imported, so ``base.pipeline.presets`` resolves; files live under ``under`` or a temp dir."""
    folder = Path(under or tempfile.mkdtemp(prefix="ltx2stream-baseline-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "ltx2stream"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    pattern = re.compile(r"\bltx2stream\b(?=[.\s])")
    for path in (folder / "ltx2stream").rglob("*.py"):
        text = path.read_text()
        path.write_text(pattern.sub(NAME, text))
    (folder / "ltx2stream").rename(folder / NAME)
    sys.path.insert(0, str(folder))
    for module in modules:
        importlib.import_module(f"{NAME}.{module}")
    return importlib.import_module(NAME)

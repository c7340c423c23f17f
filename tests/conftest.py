"""Shared fixtures: the embedded tiny models are written once per test run into a temporary cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point LTX2STREAM_CACHE at a per-run directory so tests never touch the user's cache."""
    root = tmp_path_factory.mktemp("ltx2stream-cache")
    old = os.environ.get("LTX2STREAM_CACHE")
    os.environ["LTX2STREAM_CACHE"] = str(root)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    yield root
    if old is None:
        os.environ.pop("LTX2STREAM_CACHE", None)
    else:
        os.environ["LTX2STREAM_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_pipelines(tiny_cache: Path) -> dict[str, object]:
    """LTX2Pipeline per tiny preset, sharing components per flavour (built lazily through PipelineHost)."""
    from ltx2stream.session.host import PipelineHost

    host = PipelineHost(("tiny-ltx2", "tiny-ltx2.3", "tiny-ltx2-one-stage", "tiny-ltx2-dev"))
    return {"host": host}


@pytest.fixture(scope="session")
def tiny_host(tiny_pipelines: dict[str, object]):  # type: ignore[no-untyped-def]
    return tiny_pipelines["host"]

"""The thread budget (issue #13): torch, encoder-pool and x264 threads from the cores, never oversubscribed
unless asked for; the serve flags override it; the worker and the encoders apply it."""

from __future__ import annotations

import argparse
import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from ltx2stream.commands.serve import config_from_args, register, thread_budget, with_budget
from ltx2stream.errors import ConfigError
from ltx2stream.media import SessionEncoder
from ltx2stream.server.scheduler import Scheduler
from ltx2stream.server.streaming import default_encoder_factory
from ltx2stream.server.threads import plan_threads
from ltx2stream.server.worker import Worker


@pytest.mark.parametrize("cpu", [True, False])
def test_the_budget_fills_the_cores_without_oversubscribing(cpu: bool) -> None:
    for cores, workers in itertools.product(range(1, 65), range(1, 9)):
        b = plan_threads(cores, workers, cpu_workers=cpu)
        assert min(b.torch, b.encode, b.x264) >= 1
        # one torch thread per worker and one encoder are the floor; above it the cores are the cap
        assert b.total <= max(cores, workers + 1), (cores, workers, b)
        if cores >= workers + 1:
            assert not b.oversubscribed
        if cpu and cores >= 2 * workers + 1:
            assert b.total >= cores - workers  # what torch cannot split evenly is all that is left idle


def test_known_budgets_and_explicit_values() -> None:
    b = plan_threads(2, 1, cpu_workers=True)  # this machine: 1 torch + 1 encoder of 1 x264 thread
    assert (b.torch, b.encode, b.x264, b.total) == (1, 1, 1, 2)
    b = plan_threads(16, 1, cpu_workers=True)
    assert (b.torch, b.encode, b.x264) == (14, 2, 1)
    b = plan_threads(16, 2, cpu_workers=False)  # GPU workers: the encoders get the cores
    assert (b.torch, b.encode, b.x264, b.total) == (1, 4, 3, 14)
    b = plan_threads(16, 1, cpu_workers=True, encode=4, x264=2)  # explicit values win, torch gets the rest
    assert (b.torch, b.encode, b.x264) == (8, 4, 2)
    b = plan_threads(2, 1, cpu_workers=True, torch=4)
    assert b.oversubscribed and b.total == 5
    with pytest.raises(ConfigError, match="threads.encode"):
        plan_threads(4, 1, cpu_workers=True, encode=0)


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["serve", *flags])


def test_serve_flags_set_and_override_the_budget() -> None:
    args = _args("--cores", "8", "--x264-threads", "2")
    config = with_budget(config_from_args(args), thread_budget(args, ["cpu"]))
    assert (config.torch_threads, config.encode_threads, config.x264_threads) == (6, 1, 2)
    args = _args("--cores", "8", "--torch-threads", "3", "--encode-threads", "2")
    config = with_budget(config_from_args(args), thread_budget(args, ["cuda:0", "cuda:1"]))
    assert (config.torch_threads, config.encode_threads, config.x264_threads) == (3, 2, 3)
    with pytest.raises(ConfigError, match="torch_threads"):
        config.replace(torch_threads=0)


def test_serve_sets_what_the_encoders_take_during_the_decode_and_the_switch_interval() -> None:
    args = _args("--cores", "2")
    assert with_budget(config_from_args(args), thread_budget(args, ["cpu"])).encode_during_decode == "all"
    args = _args("--cores", "2", "--encode-during-decode", "first")
    config = with_budget(config_from_args(args), thread_budget(args, ["cpu"]), args.encode_during_decode)
    assert config.encode_during_decode == "first"
    with pytest.raises(ConfigError, match="encode_during_decode"):
        config.replace(encode_during_decode="some")
    assert config.switch_interval_s == 0.001
    args = _args("--cores", "2")
    assert with_budget(config_from_args(args), thread_budget(args, ["cuda:0"])).switch_interval_s is None
    with pytest.raises(ConfigError, match="switch_interval_s"):
        config.replace(switch_interval_s=0.0)


def test_the_server_sets_the_switch_interval_while_it_serves(tmp_path: Path) -> None:
    import asyncio
    import sys

    from ltx2stream.server.app import StreamingServer
    from ltx2stream.server.config import ServerConfig

    def factory() -> object:
        raise RuntimeError("no host needed")

    async def main() -> float:
        config = ServerConfig(port=0, store_dir=tmp_path, web_root=None, switch_interval_s=0.002)
        app = StreamingServer(config, factory)  # type: ignore[arg-type]
        await app.start()
        try:
            return sys.getswitchinterval()
        finally:
            await app.shutdown()

    before = sys.getswitchinterval()
    assert asyncio.run(main()) == pytest.approx(0.002)
    assert sys.getswitchinterval() == before


def test_the_worker_and_the_encoder_apply_it() -> None:
    seen: list[int] = []

    def factory() -> object:
        seen.append(torch.get_num_threads())  # called on the worker's thread, after the budget is applied
        raise RuntimeError("no host needed")

    with ThreadPoolExecutor(1) as pool:
        before = torch.get_num_threads()
        worker = Worker("w", factory, Scheduler(1, 0), pool, default_encoder_factory, torch_threads=1)  # type: ignore[arg-type]
        worker.start()
        assert worker.loaded.wait(30) and worker.stop(5)
        assert seen == [1] and torch.get_num_threads() == before  # the caller's own setting is untouched
    enc = SessionEncoder(64, 64, 12.0, 24000, threads=1)
    enc.add_video(np.zeros((3, 64, 64, 3), np.uint8))
    assert enc.drain()
    with pytest.raises(ConfigError):
        SessionEncoder(64, 64, 12.0, 24000, threads=0)

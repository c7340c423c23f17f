"""A resumable, deterministic CPU training loop shared by every pocket part.

Determinism: step ``s`` draws everything random (data, crops, sigmas, noise) from a generator seeded with
``mix_seed(seed, s)``, never from a stateful stream, and the learning rate is a function of ``s``; so a run
resumed from the checkpoint after step ``s`` repeats the uninterrupted run bit for bit (same thread count).

With ``TrainConfig.ema`` the loop keeps an exponential moving average of the weights beside them (``state.pt``'s
``ema``; exports take it, ``module_states``): the weights of one checkpoint differ from the next by what the last
few hundred noisy steps did, the average by what the run learned.

The run directory holds ``state.pt`` (modules, optimiser, step, elapsed seconds, the run's arguments; written
atomically every ``checkpoint_every_s`` seconds and at the end), ``log.jsonl`` (one line per logged step, cut
back to the checkpoint's step on resume), ``loss.csv`` and ``loss.png`` (rewritten at each checkpoint).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ltx2stream.pocket.data import mix_seed

log = logging.getLogger(__name__)
EVAL_FILE = "eval.jsonl"
STATE_FILE = "state.pt"
LOG_FILE = "log.jsonl"


class Task(Protocol):
    """One trainable part: its modules and the loss of step ``step`` (random draws only from ``gen``)."""

    name: str

    def modules(self) -> Mapping[str, torch.nn.Module]: ...

    def loss(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]: ...


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    seed: int = 0
    lr: float = 3e-4
    warmup: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Adam lr of a weight with fan-in n: lr * min(1, fan_in_ref / n) (0: one lr for all). Adam moves every weight
    # by about lr per step whatever its gradient, so a conv with a large fan-in changes its output ~n times faster
    # than a small one; docs/pocket.md "Video VAE recipe".
    fan_in_ref: int = 0
    checkpoint_every_s: float = 300.0
    log_every: int = 1
    time_limit_s: float | None = None  # stop (after checkpointing) once this much wall time has passed
    # decay per step of the moving average of the weights (0: none kept). A run given one later starts it from
    # its weights at that step; 0.998 forgets a start within ~2 000 steps (0.998^2000 ~ 0.02)
    ema: float = 0.0


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 10 % over ``cfg.steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def _params(task: Task) -> list[torch.nn.Parameter]:
    return [p for _, m in sorted(task.modules().items()) for p in m.parameters() if p.requires_grad]


def lr_scale(p: torch.nn.Parameter, fan_in_ref: int) -> float:
    """The factor on the base lr of ``p``: min(1, fan_in_ref / fan-in) for weights (dim > 1), 1 otherwise."""
    if fan_in_ref <= 0 or p.dim() < 2:
        return 1.0
    return min(1.0, fan_in_ref / p[0].numel())


def make_optimizer(task: Task, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; one parameter group per lr factor (``lr_scale`` key, in order of first appearance)."""
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for p in _params(task):
        groups.setdefault(lr_scale(p, cfg.fan_in_ref), []).append(p)
    param_groups = [{"params": ps, "lr_scale": k} for k, ps in groups.items()]
    return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=(0.9, 0.99), weight_decay=cfg.weight_decay)


Average = dict[str, dict[str, torch.Tensor]]  # module name -> parameter name -> its moving average


def save_state(
    run_dir: Path,
    task: Task,
    opt: torch.optim.Optimizer,
    step: int,
    elapsed: float,
    extra: dict[str, Any],
    average: Average | None = None,
) -> Path:
    """Atomic write of the training state (temp file + fsync + rename)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "elapsed_s": elapsed,
        "modules": {k: m.state_dict() for k, m in task.modules().items()},
        "optimizer": opt.state_dict(),
        "extra": extra,
    }
    if average is not None:
        state["ema"] = average
    tmp = run_dir / f".{STATE_FILE}.tmp"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, run_dir / STATE_FILE)
    return run_dir / STATE_FILE


def load_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / STATE_FILE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def module_states(state: Mapping[str, Any], *, ema: bool = True) -> dict[str, dict[str, torch.Tensor]]:
    """The modules' state dicts of a training state; where the run keeps a moving average of its weights (and
    ``ema``), the averaged parameters in place of the last step's."""
    modules: dict[str, dict[str, torch.Tensor]] = state["modules"]
    average = state.get("ema") if ema else None
    if not average:
        return modules
    return {name: {**sd, **average.get(name, {})} for name, sd in modules.items()}


def start_average(task: Task, state: Mapping[str, Any] | None, decay: float) -> Average | None:
    """The moving average to go on with: the checkpoint's, or (none kept yet) a copy of the weights now."""
    if decay <= 0.0:
        return None
    kept = state.get("ema") if state is not None else None
    average: Average = {}
    for name, module in task.modules().items():
        params = {k: p.detach() for k, p in module.named_parameters()}
        if kept is not None and set(kept.get(name, {})) != set(params):
            raise ValueError(f"the checkpoint's moving average of {name} does not hold its parameters")
        average[name] = {k: (kept[name][k] if kept is not None else p).clone() for k, p in params.items()}
    if kept is None:
        log.info("%s: moving average of the weights (decay %g) starts from the weights now", task.name, decay)
    return average


def update_average(average: Average, task: Task, decay: float) -> None:
    """``average ← decay · average + (1 − decay) · weights``, in place."""
    with torch.no_grad():
        for name, module in task.modules().items():
            kept = average[name]
            for k, p in module.named_parameters():
                kept[k].lerp_(p.detach(), 1.0 - decay)


def restore(task: Task, opt: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    for name, module in task.modules().items():
        module.load_state_dict(state["modules"][name], strict=True)
    opt.load_state_dict(state["optimizer"])


def _trim_log(path: Path, step: int) -> None:
    """Keep the log lines of steps <= ``step`` (a resumed run rewrites the rest)."""
    if not path.is_file():
        return
    kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
    path.write_text("".join(ln + "\n" for ln in kept))


def train(
    task: Task,
    run_dir: str | os.PathLike[str],
    cfg: TrainConfig,
    *,
    extra: dict[str, Any] | None = None,
    progress: bool = True,
    on_checkpoint: Callable[[int], None] | None = None,
    stop_at: int | None = None,
    initial_step: int = 0,
) -> dict[str, Any]:
    """Train ``task`` up to ``cfg.steps`` steps in ``run_dir``, resuming from its checkpoint when present.

    ``initial_step`` is the first step of a run without a checkpoint (a warm start from shipped weights).
    ``stop_at`` ends this call after that step (checkpointed) without changing the schedule of ``cfg.steps``.
    Returns a summary: ``step``, ``elapsed_s``, ``loss`` (mean of the last logged steps), ``resumed_from``.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    opt = make_optimizer(task, cfg)
    state = load_state(run)
    step, elapsed, resumed = initial_step, 0.0, None
    if state is not None:
        restore(task, opt, state)
        step, elapsed, resumed = int(state["step"]), float(state["elapsed_s"]), int(state["step"])
        log.info("%s: resumed at step %d (%.0f s trained)", task.name, step, elapsed)
    _trim_log(run / LOG_FILE, step)
    average = start_average(task, state, cfg.ema)
    meta = {"task": task.name, "config": asdict(cfg), **(extra or {})}
    for m in task.modules().values():
        m.train()
    start, last_ckpt = time.monotonic(), time.monotonic()
    recent: list[float] = []
    bar = tqdm(total=cfg.steps, initial=step, desc=task.name, disable=not progress, dynamic_ncols=True)
    with open(run / LOG_FILE, "a") as log_file:
        while step < cfg.steps:
            gen = torch.Generator().manual_seed(mix_seed(cfg.seed, step))
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, step) * group.get("lr_scale", 1.0)
            opt.zero_grad(set_to_none=True)
            loss, parts = task.loss(step, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{task.name}: loss is {float(loss.detach())} at step {step + 1}; "
                                         f"the last checkpoint in {run} is intact (lower --lr and resume)")  # fmt: skip
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(_params(task), cfg.grad_clip)
            opt.step()
            if average is not None:
                update_average(average, task, cfg.ema)
            step += 1
            value = float(loss.detach())
            recent = (recent + [value])[-50:]
            now = time.monotonic()
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, "loss": value, "grad_norm": float(norm), "lr": learning_rate(cfg, step - 1),
                       "time_s": round(elapsed + now - start, 2), **parts}  # fmt: skip
                log_file.write(json.dumps(row) + "\n")
                log_file.flush()
            bar.update(1)
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
            timed_out = (cfg.time_limit_s is not None and now - start >= cfg.time_limit_s) or step == stop_at
            if now - last_ckpt >= cfg.checkpoint_every_s or step == cfg.steps or timed_out:
                save_state(run, task, opt, step, elapsed + now - start, meta, average)
                write_plots(run)
                _evaluate(task, run, step)
                last_ckpt = now
                if on_checkpoint is not None:
                    on_checkpoint(step)
            if timed_out:
                break
    bar.close()
    total = elapsed + time.monotonic() - start
    if not (run / STATE_FILE).is_file():
        save_state(run, task, opt, step, total, meta, average)
    return {
        "step": step,
        "elapsed_s": total,
        "loss": sum(recent) / len(recent) if recent else float("nan"),
        "resumed_from": resumed,
    }


def _evaluate(task: Task, run: Path, step: int) -> None:
    """At each checkpoint, a task with an ``evaluate()`` method (measures that the loss does not show) appends
    ``{"step": …, **evaluate()}`` to ``eval.jsonl``; the modules are in eval mode meanwhile."""
    evaluate = getattr(task, "evaluate", None)
    if evaluate is None:
        return
    modules = list(task.modules().values())
    for m in modules:
        m.eval()
    try:
        row = {"step": step, **evaluate()}
    finally:
        for m in modules:
            m.train()
    with open(run / EVAL_FILE, "a") as f:
        f.write(json.dumps(row) + "\n")


def read_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def write_plots(run_dir: str | os.PathLike[str]) -> None:
    """``loss.csv`` and ``loss.png`` (raw and smoothed loss per step, log scale) from ``log.jsonl``."""
    run = Path(run_dir)
    rows = read_log(run)
    if not rows:
        return
    keys = sorted({k for r in rows for k in r} - {"step"})
    lines = [",".join(["step", *keys])]
    lines += [",".join([str(r["step"]), *(str(r.get(k, "")) for k in keys)]) for r in rows]
    (run / "loss.csv").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # plotting is optional; the CSV is always written
        log.warning("matplotlib is not installed: no loss.png")
        return
    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    k = max(1, len(loss) // 50)
    smooth = [
        sum(loss[max(0, i - k + 1) : i + 1]) / len(loss[max(0, i - k + 1) : i + 1]) for i in range(len(loss))
    ]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, alpha=0.3, label="loss")
    ax.plot(steps, smooth, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(f"{run.name}: {rows[-1]['time_s'] / 60:.0f} min, step {steps[-1]}")
    ax.legend()
    fig.tight_layout()
    tmp = run / ".loss.png.tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, run / "loss.png")

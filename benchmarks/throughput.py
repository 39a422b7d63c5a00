"""Training and evaluation throughput of the NTM on the paper's copy configuration.

Training: sequences per second through the library's ``train_step`` (data generation, forward,
backward, gradient clipping, optimiser step) with lengths drawn uniformly from 1-20, one length
per batch (the copy task's training distribution). Evaluation: the same batches through the
forward pass alone, under ``torch.no_grad()``. A few warm-up batches come first; then batches
run until ``seconds`` have passed, and the rate is sequences over elapsed seconds.
"""

from __future__ import annotations

import time

import torch

from neural_memory.ntm import NTM, NTMConfig
from neural_memory.tasks import get_task
from neural_memory.training import TrainConfig, make_optimizer, train_step

WARMUP_BATCHES = 3


MODES = ("eager", "compiled", "fused")


def _model(mode: str) -> NTM:
    """The paper's copy NTM run plainly (``eager``), with ``NTM.compile_step`` (``compiled``) or
    with the fused C++ unroll (``fused``, ``NTM.use_fused``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    task = get_task("copy")
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("copy", input_size=task.input_size, output_size=task.output_size))
    if mode == "compiled":
        return model.compile_step()
    return model.use_fused() if mode == "fused" else model


def train_throughput(batch_size: int, seconds: float, recipe: TrainConfig, mode: str = "eager") -> dict:
    task = get_task("copy")
    model = _model(mode)
    optimizer = make_optimizer(model.parameters(), recipe)
    generator = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for _ in range(WARMUP_BATCHES):
        train_step(model, task.sample_train(batch_size, generator), optimizer, recipe)
    warmup = time.perf_counter() - start
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        train_step(model, task.sample_train(batch_size, generator), optimizer, recipe)
        done += batch_size
    elapsed = time.perf_counter() - start
    return {"sequences": done, "seconds": round(elapsed, 2),
            "sequences_per_second": round(done / elapsed, 1), "warmup_seconds": round(warmup, 2)}


@torch.no_grad()
def eval_throughput(batch_size: int, seconds: float, mode: str = "eager") -> dict:
    task = get_task("copy")
    model = _model(mode).eval()
    generator = torch.Generator().manual_seed(1)
    start = time.perf_counter()
    for _ in range(WARMUP_BATCHES):
        model(task.sample_train(batch_size, generator).inputs)
    warmup = time.perf_counter() - start
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model(task.sample_train(batch_size, generator).inputs)
        done += batch_size
    elapsed = time.perf_counter() - start
    return {"sequences": done, "seconds": round(elapsed, 2),
            "sequences_per_second": round(done / elapsed, 1), "warmup_seconds": round(warmup, 2)}


def rate_range(stats: dict) -> str:
    """``"median [lowest, highest]"`` of a summary entry's rates (``run.py --repeats``)."""
    return f"{stats['median']:,.0f} [{stats['min']:,.0f}, {stats['max']:,.0f}]"

"""Where one NTM training step's time goes: torch.profiler over a few steps, one thread.

    python benchmarks/profile_step.py [--batch 32] [--length 10] [--fused] [--out FILE]

Prints forward and forward+backward times, the per-time-step cost and the operator table
(sorted by self CPU time), and writes the same text to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from neural_memory.ntm import NTM, NTMConfig
from neural_memory.tasks.copy import copy_batch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=10, help="copy length L (T = 2L + 1)")
    parser.add_argument("--fused", action="store_true", help="profile the fused C++ unroll")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/profile.txt (results/profile-fused.txt with --fused)")
    args = parser.parse_args()
    if args.out is None:
        name = "profile-fused.txt" if args.fused else "profile.txt"
        args.out = Path(__file__).resolve().parent / "results" / name
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("copy"))
    if args.fused:
        model.use_fused()
    x, y, mask = copy_batch(args.batch, args.length, torch.Generator().manual_seed(0))
    steps = x.shape[1]

    def run(n: int, backward: bool) -> float:
        start = time.perf_counter()
        for _ in range(n):
            out = model(x)
            if backward:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y, weight=mask[..., None])
                loss.backward()
        return (time.perf_counter() - start) / n

    run(3, True)
    fwd, both = run(10, False), run(10, True)
    mode = "fused C++ unroll" if args.fused else "plain (eager) path"
    lines = [f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}, one thread; {mode}",
             f"B={args.batch} T={steps}: forward {fwd * 1e3:.1f} ms, forward+backward {both * 1e3:.1f} ms; "
             f"per time step: forward {fwd / steps * 1e6:.0f} us, backward {(both - fwd) / steps * 1e6:.0f} us"]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(3, True)
    events = prof.key_averages()
    lines.append(f"operator calls per sequence step (forward+backward): "
                 f"{sum(e.count for e in events if e.key.startswith('aten::')) / (3 * steps):.0f} aten calls")
    lines.append(events.table(sort_by="self_cpu_time_total", row_limit=25))
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

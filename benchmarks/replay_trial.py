"""Trial: replay the training sequences the copy model got badly wrong (issue 7: relapses).

The error anatomy (``error_anatomy.py``) found that the seeds that relapse have, at the drop,
rare sequences whose answer is read out of step (about 60 wrong bits each), and that the small
step after the drop does not unlearn them: each turns up about once in 200 sequences, so
few updates see one. This trial keeps every fresh training sequence with more than ``NEAR``
wrong bits in a buffer (the last ``KEEP`` per length) and appends up to ``--replay`` of them to
every later batch of the same length -- after the drop only, or from the start -- until the model
gets one right or it has been replayed ``MAX_REPLAYS`` times. Otherwise it trains as the
convergence benchmark does (``fast-adam-settle``, the row-0 copy NTM, the fused unroll, batches
of 32, the drop below 0.1, run on to 3x), and the running mean, the convergence and the relapse
are over the *fresh* sequences only, so they mean what they mean there. A prototype, not a
library option: it has its own training step (the library's ``train_step`` plus the buffer)::

    python benchmarks/replay_trial.py --replay 4 --mode always --seeds 0 8 1 6 \\
        --out benchmarks/results/replay-always.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import ConvergenceSettings  # noqa: E402
from run import get_recipe, load, machine, write_json  # noqa: E402

from neural_memory.ntm import NTM, NTMConfig  # noqa: E402
from neural_memory.tasks import get_task  # noqa: E402
from neural_memory.tasks.metrics import sequence_bit_errors, sequence_cost_nats  # noqa: E402
from neural_memory.training import (  # noqa: E402
    clip_gradients,
    draw_training_batch,
    evaluate_model,
    lr_dropped,
    make_optimizer,
    maybe_drop_lr,
)

NEAR = 3  # more wrong bits than this: a failure worth replaying (error_anatomy's near miss)
KEEP = 8  # failures kept per length (the newest)
MAX_REPLAYS = 16


def run_seed(seed: int, replay: int, mode: str, settings: ConvergenceSettings) -> dict:
    recipe = get_recipe("fast-adam-settle")
    task = get_task("copy")
    torch.manual_seed(seed)
    model = NTM(NTMConfig.preset("copy", input_size=task.input_size,
                                 output_size=task.output_size, learn_initial_weights=False))
    model.use_fused()
    model.train()
    optimizer = make_optimizer(model.parameters(), recipe)
    generator = torch.Generator().manual_seed(seed)
    buffer: dict[int, list[list]] = {}  # length -> [inputs, targets, mask, replays] per sequence
    b = recipe.batch_size
    window: deque[float] = deque(maxlen=math.ceil(settings.window / b))
    seen, seconds, replayed = 0, 0.0, 0
    converged_at = converged_seconds = None
    stop_at, worst_after, curve = settings.max_sequences, 0.0, []
    while seen < stop_at:
        start = time.perf_counter()
        inputs, targets, mask = draw_training_batch(task, b, generator, seen, optimizer, recipe)
        length = (inputs.shape[1] - 1) // 2
        on = mode == "always" or lr_dropped(optimizer, recipe)
        old = buffer.get(length, [])[:replay] if on else []
        if old:
            inputs = torch.cat([inputs] + [e[0] for e in old])
            targets = torch.cat([targets] + [e[1] for e in old])
            mask = torch.cat([mask] + [e[2] for e in old])
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        sequence_cost_nats(logits, targets, mask).mean().backward()
        with torch.no_grad():
            wrong = sequence_bit_errors(logits, targets, mask)
        clip_gradients(model.parameters(), recipe)
        optimizer.step()
        keep = []
        for entry, bits in zip(old, wrong[b:].tolist(), strict=True):
            entry[3] += 1
            if bits > NEAR and entry[3] < MAX_REPLAYS:
                keep.append(entry)
        kept = buffer.get(length, [])[len(old):] + keep
        for i in torch.nonzero(wrong[:b] > NEAR).flatten().tolist():
            kept.append([inputs[i:i + 1], targets[i:i + 1], mask[i:i + 1], 0])
        buffer[length] = kept[-KEEP:]
        replayed += len(old)
        seconds += time.perf_counter() - start
        seen += b
        window.append(float(wrong[:b].sum()))
        mean = sum(window) / (b * len(window))
        if not curve or seen - curve[-1][0] >= 1000:
            curve.append((seen, round(seconds, 2), round(mean, 4)))
        if len(window) * b < settings.window:
            continue
        maybe_drop_lr(optimizer, recipe, mean, seen)
        if converged_at is None:
            if mean < settings.threshold:
                converged_at, converged_seconds = seen, seconds
                stop_at = min(settings.max_sequences, math.ceil(settings.extend * seen))
            elif seconds > settings.max_seconds:
                break
        else:
            worst_after = max(worst_after, mean)
    gen = torch.Generator().manual_seed(10_000 + seed)
    return {
        "seed": seed,
        "converged": converged_at is not None,
        "sequences_to_converge": converged_at,
        "seconds_to_converge": None if converged_seconds is None else round(converged_seconds, 2),
        "sequences_run": seen,
        "train_seconds": round(seconds, 2),
        "worst_running_mean_after_converging": round(worst_after, 4) if converged_at else None,
        "relapsed": (worst_after > settings.relapse_threshold) if converged_at else None,
        "sequences_replayed": replayed,
        "eval_length_20": evaluate_model(model, task, settings.eval_sequences, gen, length=20),
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replay", type=int, default=4, help="failures appended per batch")
    parser.add_argument("--mode", choices=("after-drop", "always"), default="always")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    settings = ConvergenceSettings()
    result = {"machine": machine(), "load_at_start": load(), "replay": args.replay,
              "mode": args.mode, "near": NEAR, "keep": KEEP, "max_replays": MAX_REPLAYS,
              "recipe": asdict(get_recipe("fast-adam-settle")), "settings": asdict(settings),
              "seeds": []}
    for seed in args.seeds:
        r = run_seed(seed, args.replay, args.mode, settings)
        result["seeds"].append(r)
        print(f"seed {seed}: converged {r['converged']} after {r['sequences_to_converge']} sequences "
              f"({r['seconds_to_converge']} s); worst running mean after "
              f"{r['worst_running_mean_after_converging']}; relapse {r['relapsed']}; "
              f"{r['sequences_replayed']} replayed; length 20: "
              f"{r['eval_length_20']['bit_errors']:.3f} bit errors/seq", flush=True)
        write_json(args.out, result)
    result["load_at_end"] = load()
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

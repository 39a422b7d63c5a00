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
are over the *fresh* sequences only, so they mean what they mean there: the trial *is*
``convergence.run_seed``, with its own training step (``Replay``: the library's ``train_step``
plus the buffer). A prototype, not a library option::

    python benchmarks/replay_trial.py --replay 4 --mode always --seeds 0 8 1 6 \\
        --out benchmarks/results/replay-always.json
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import ConvergenceSettings, run_seed  # noqa: E402
from run import get_recipe, load, machine, write_json  # noqa: E402

from neural_memory.tasks.metrics import sequence_bit_errors, sequence_cost_nats  # noqa: E402
from neural_memory.training import clip_gradients, lr_dropped  # noqa: E402

NEAR = 3  # more wrong bits than this: a failure worth replaying (error_anatomy's near miss)
KEEP = 8  # failures kept per length (the newest)
MAX_REPLAYS = 16


class Replay:
    """A training step for ``convergence.run_seed`` that appends up to ``replay`` kept failures of
    the batch's length to it (from the start, or once the learning rate has dropped) and
    returns the bit errors of the fresh sequences only."""

    def __init__(self, replay: int, mode: str) -> None:
        self.replay, self.mode = replay, mode
        self.buffer: dict[int, list[list]] = {}  # length -> [inputs, targets, mask, replays] each
        self.replayed = 0

    def __call__(self, model, batch, optimizer, recipe) -> tuple[float, float]:
        inputs, targets, mask = batch
        b, length = inputs.shape[0], (inputs.shape[1] - 1) // 2
        on = self.mode == "always" or lr_dropped(optimizer, recipe)
        old = self.buffer.get(length, [])[:self.replay] if on else []
        if old:
            inputs = torch.cat([inputs] + [e[0] for e in old])
            targets = torch.cat([targets] + [e[1] for e in old])
            mask = torch.cat([mask] + [e[2] for e in old])
        if not model.training:
            model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        cost = sequence_cost_nats(logits, targets, mask)
        loss = cost.mean()
        if not torch.isfinite(loss):  # as train_step: run_seed reports the seed as nan
            raise FloatingPointError(f"the training loss became {loss.item()}")
        loss.backward()
        with torch.no_grad():
            wrong = sequence_bit_errors(logits, targets, mask)
        clip_gradients(model.parameters(), recipe)
        optimizer.step()
        keep = []
        for entry, bits in zip(old, wrong[b:].tolist(), strict=True):
            entry[3] += 1
            if bits > NEAR and entry[3] < MAX_REPLAYS:
                keep.append(entry)
        kept = self.buffer.get(length, [])[len(old):] + keep
        for i in torch.nonzero(wrong[:b] > NEAR).flatten().tolist():
            kept.append([inputs[i:i + 1], targets[i:i + 1], mask[i:i + 1], 0])
        self.buffer[length] = kept[-KEEP:]
        self.replayed += len(old)
        return float(cost[:b].detach().sum()) / math.log(2.0), float(wrong[:b].sum())


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
        step = Replay(args.replay, args.mode)
        r = run_seed(seed, get_recipe("fast-adam-settle"), settings,
                     {"learn_initial_weights": False}, log=lambda *_: None, fused=True, step=step)
        r["sequences_replayed"] = step.replayed
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

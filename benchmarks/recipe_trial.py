"""One seed of one candidate recipe on copy, until it converges or its budget runs out.

    python benchmarks/recipe_trial.py BATCH OPTIMIZER LR SEED MAX_SECONDS ['{"eps": 1e-8, ...}']

The optional JSON object holds further ``TrainConfig`` fields, and ``"model"``: a dict of
``NTMConfig`` overrides (e.g. ``{"model": {"learn_initial_weights": false}}``), and
``"extend"``: run on to this multiple of the sequences it took to converge (default 1). Prints progress
every 5,000 sequences or so and the convergence record (see ``convergence.py``) as JSON. These
are the trials behind the recipe table of the book's "Performance and stability" appendix.
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convergence import ConvergenceSettings, run_seed  # noqa: E402

from neural_memory.training import TrainConfig  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    batch, optimizer, lr, seed, max_seconds = sys.argv[1:6]
    extra = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    model_overrides = extra.pop("model", {})
    extend = float(extra.pop("extend", 1.0))  # run on to this multiple of the sequences to converge
    recipe = TrainConfig(optimizer=optimizer, lr=float(lr), batch_size=int(batch), **extra)
    settings = ConvergenceSettings(max_seconds=float(max_seconds), extend=extend, eval_sequences=64)
    record = run_seed(int(seed), recipe, settings, model_overrides, progress=True)
    print(sys.argv[1:], json.dumps(record), flush=True)

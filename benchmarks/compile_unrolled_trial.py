"""Trial: ``torch.compile`` of the whole NTM forward (the time loop unrolled into one graph).

    python benchmarks/compile_unrolled_trial.py BATCH T eager|compiled

At a fixed batch and length (a fixed shape, as padding every batch to one length would give),
prints the time of the first training step -- for ``compiled``, the compilation -- and then the
milliseconds per training step over 10 seconds.
"""

import sys
import time

import torch

from neural_memory.ntm import NTM, NTMConfig

if __name__ == "__main__":
    torch.set_num_threads(1)
    batch, steps, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("copy"))
    optimizer = torch.optim.RMSprop(
        model.parameters(), lr=1e-4, momentum=0.9, centered=True, alpha=0.95, eps=1e-4
    )
    forward = model if mode == "eager" else torch.compile(model, fullgraph=True, dynamic=False)
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 2, (batch, steps, 9), generator=gen).float()
    y = torch.randint(0, 2, (batch, steps, 8), generator=gen).float()

    def step() -> None:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(model.parameters(), 10.0)
        optimizer.step()

    start = time.perf_counter()
    step()
    print(f"{mode} B={batch} T={steps}: first step {time.perf_counter() - start:.1f} s", flush=True)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 10:
        step()
        n += 1
    per = (time.perf_counter() - start) / n
    print(f"{mode} B={batch} T={steps}: {per * 1e3:.1f} ms per step, {batch / per:.0f} seq/s", flush=True)

"""The library on a GPU: the same values as on the CPU, training, resume and checkpoints.

Skipped where torch sees no GPU (CI has none); run on a GPU machine with
``python -m pytest tests/test_cuda.py``. The book's "Performance and stability" appendix says
where and when they last ran.
"""

import sys
from pathlib import Path

import pytest
import torch

from neural_memory.baselines import LSTMBaseline, LSTMConfig
from neural_memory.checkpoint import load_checkpoint
from neural_memory.gumbel import gumbel_softmax, sample_gumbel
from neural_memory.lookup import HardMemory
from neural_memory.ntm import NTM, NTMConfig
from neural_memory.ntm.fused import FusedUnsupported
from neural_memory.tasks import get_task
from neural_memory.training import TrainConfig, evaluate_model, model_config_for, run_training

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU visible to torch")

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.device("cuda")


def _forward_backward(model, x):
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.square().mean().backward()
    return out.detach().cpu(), [p.grad.detach().cpu() for p in model.parameters()]


@pytest.mark.parametrize(
    "make",
    [
        lambda: NTM(NTMConfig.preset("tiny", read_heads=2)),
        lambda: NTM(NTMConfig.preset("copy", input_size=9, output_size=8)),
        lambda: NTM(NTMConfig.preset("tiny", controller="feedforward")),
        lambda: LSTMBaseline(LSTMConfig.preset("tiny", input_size=9, output_size=8)),
    ],
    ids=["ntm-tiny-2-reads", "ntm-copy-paper", "ntm-feedforward", "lstm"],
)
def test_a_model_on_the_gpu_computes_what_it_computes_on_the_cpu(make):
    """In float64 the GPU's outputs and gradients match the CPU's to rounding."""
    torch.manual_seed(0)
    cpu = make().double()
    gpu = make().double()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.to(CUDA)
    x = torch.rand(5, 11, cpu.config.input_size, dtype=torch.float64)
    out_cpu, grads_cpu = _forward_backward(cpu, x)
    out_gpu, grads_gpu = _forward_backward(gpu, x.to(CUDA))
    torch.testing.assert_close(out_gpu, out_cpu, rtol=1e-9, atol=1e-11)
    for g_gpu, g_cpu in zip(grads_gpu, grads_cpu, strict=True):
        torch.testing.assert_close(g_gpu, g_cpu, rtol=1e-8, atol=1e-11)


def test_the_trace_for_the_heat_maps_stays_on_the_gpu_and_matches():
    torch.manual_seed(1)
    model = NTM(NTMConfig.preset("tiny")).double()
    x = torch.rand(2, 7, model.config.input_size, dtype=torch.float64)
    _, cpu_trace = model(x, return_trace=True)
    _, gpu_trace = model.to(CUDA)(x.to(CUDA), return_trace=True)
    assert gpu_trace.memory.device.type == "cuda"
    torch.testing.assert_close(gpu_trace.memory.cpu(), cpu_trace.memory)
    torch.testing.assert_close(gpu_trace.read_weights.cpu(), cpu_trace.read_weights)


def test_hard_heads_run_on_the_gpu_in_training_and_read_one_row_in_evaluation():
    torch.manual_seed(2)
    model = NTM(NTMConfig.preset("tiny", hard_addressing="both", memory_init_value=0.1)).to(CUDA)
    x = torch.rand(3, 6, model.config.input_size, device=CUDA)
    out, grads = _forward_backward(model, x)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    _, trace = model(x, return_trace=True)
    assert torch.equal(trace.read_weights.max(-1).values, torch.ones_like(trace.read_weights[..., 0]))


def test_the_gumbel_tools_and_hard_memory_draw_on_the_gpu():
    logits = torch.randn(4, 5, device=CUDA, requires_grad=True)
    gen = torch.Generator(device=CUDA).manual_seed(3)
    g = sample_gumbel(logits, generator=gen)
    assert g.device.type == "cuda" and torch.isfinite(g).all()
    y = gumbel_softmax(logits, tau=0.5, hard=True)
    assert torch.equal(y.sum(-1).detach(), torch.ones(4, device=CUDA))
    y.mul(torch.arange(5.0, device=CUDA)).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    memory = HardMemory(torch.linspace(-1, 1, 5)).to(CUDA)
    memory.train()
    assert memory(torch.randn(8, 5, device=CUDA), generator=gen).device.type == "cuda"
    memory.eval()
    logits = torch.randn(8, 5, device=CUDA)
    torch.testing.assert_close(memory(logits), memory.memory[logits.argmax(-1)])


def test_the_fused_unroll_refuses_gpu_tensors_with_a_clear_error():
    model = NTM(NTMConfig.preset("tiny")).use_fused().to(CUDA)
    with pytest.raises(FusedUnsupported, match="CPU only"):
        model(torch.rand(2, 4, model.config.input_size, device=CUDA))


@pytest.mark.parametrize("kind", ["ntm", "lstm"])
def test_training_on_the_gpu_resumes_and_its_checkpoint_loads_on_the_cpu(tmp_path, kind):
    """A run interrupted on the GPU and resumed there ends where the uninterrupted run does (to
    float rounding: some GPU kernels add in a varying order); its checkpoint loads on a CPU."""
    task = get_task("copy")
    config = model_config_for(task, kind, "tiny")
    recipe = TrainConfig.preset("tiny", sequences=48, checkpoint_every=16, log_every=8)

    def train(name, **kw):
        return run_training("copy", kind, config, recipe, tmp_path / name, seed=7,
                            progress=False, device="cuda", **kw)

    full = train("full")
    train("part", stop_after=16)
    torch.manual_seed(12345)
    resumed = train("part", resume=True)
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
    assert [r[0] for r in resumed.rows] == [8, 16, 24, 32, 40, 48]
    ckpt = load_checkpoint(full.checkpoint, task="copy", model_kind=kind)
    assert all(t.device.type == "cpu" for t in ckpt.model.state_dict().values())
    gen = torch.Generator().manual_seed(5)
    on_cpu = evaluate_model(ckpt.model, task, 8, gen, length=5)
    gen = torch.Generator().manual_seed(5)
    on_gpu = evaluate_model(full.model, task, 8, gen, device="cuda", length=5)
    assert on_cpu.keys() == on_gpu.keys()
    for k in on_cpu:
        assert on_cpu[k] == pytest.approx(on_gpu[k], rel=1e-4, abs=1e-4)


def test_the_benchmarks_measure_on_the_gpu():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from convergence import ConvergenceSettings, copy_model_config, run_seed
    from throughput import eval_throughput, train_throughput

    recipe = TrainConfig.preset("fast-adam-settle", batch_size=4)
    train = train_throughput(4, 0.5, recipe, "eager", "cuda")
    evaluated = eval_throughput(4, 0.5, "eager", "cuda")
    assert train["sequences"] >= 4 and train["sequences_per_second"] > 0
    assert evaluated["sequences"] >= 4 and evaluated["sequences_per_second"] > 0
    settings = ConvergenceSettings(max_sequences=16, eval_sequences=4, by_length_sequences=2)
    record = run_seed(0, recipe, settings, copy_model_config("copy-row0"), log=lambda _: None,
                      device="cuda")
    assert record["sequences_run"] == 16 and not record["nan"]
    assert list(record["bit_errors_by_training_length"]) == list(range(1, 21))
    with pytest.raises(ValueError, match="CPU only"):
        run_seed(0, recipe, settings, fused=True, device="cuda")

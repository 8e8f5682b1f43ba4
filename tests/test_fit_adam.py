"""PlainAdam (backend.fit.adam): torch.optim.Adam's update to the bit, without importing torch._dynamo."""
import subprocess
import sys

import torch

from backend.fit.adam import PlainAdam
from backend.fit.step_graph import adam


def _run(make, steps: int = 40) -> list[torch.Tensor]:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(torch.randn(7))
    unused = torch.nn.Parameter(torch.randn(2))  # never gets a gradient: skipped, as torch does
    target = torch.randn(5, 3)
    opt = make([{"params": [a], "lr": 0.05}, {"params": [b, unused], "lr": 0.003}])
    for i in range(steps):
        loss = ((a - target) ** 2).sum() * (1 + i % 3) + (b.sin() * torch.arange(7.0)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [a.detach().clone(), b.detach().clone(), unused.detach().clone()]


def test_plain_adam_matches_torch_bit_for_bit():
    mine = _run(PlainAdam)
    ref = _run(lambda groups: torch.optim.Adam(groups))
    for x, y in zip(mine, ref):
        assert torch.equal(x, y)
    assert not torch.equal(mine[0], _run(PlainAdam, steps=39)[0])  # the steps did move it


def test_eager_fit_optimiser_is_plain_and_skips_dynamo():
    assert isinstance(adam([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1}], graph=False), PlainAdam)
    code = ("import sys, torch\nfrom backend.fit.step_graph import adam\n"
            "p = torch.nn.Parameter(torch.ones(3)); opt = adam([{'params': [p], 'lr': 0.1}], False)\n"
            "p.sum().backward(); opt.step(); assert float(p[0]) < 1.0\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

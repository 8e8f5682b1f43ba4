"""gather_bilinear: grid_sample's values and gradients by gathers (deterministic on CUDA)."""
import pytest
import torch
import torch.nn.functional as F

from backend.render.sample import gather_bilinear, grid_sample_bilinear


@pytest.mark.parametrize("padding", ["zeros", "border"])
@pytest.mark.parametrize("align_corners", [False, True])
def test_matches_grid_sample_in_value_and_both_gradients(padding, align_corners):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, 7, 9, dtype=torch.float64, generator=g).requires_grad_(True)
    # a third of the samples fall outside the image, where the padding modes differ
    grid = (torch.rand(2, 5, 6, 2, dtype=torch.float64, generator=g) * 2.6 - 1.3).requires_grad_(True)
    weights = torch.randn(2, 3, 5, 6, dtype=torch.float64, generator=g)
    ref = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=align_corners)
    out = gather_bilinear(image, grid, padding, align_corners)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    g_ref = torch.autograd.grad((ref * weights).sum(), (image, grid))
    g_out = torch.autograd.grad((out * weights).sum(), (image, grid))
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert g_ref[1].abs().sum() > 0 and g_ref[0].abs().sum() > 0


def test_cpu_keeps_grid_sample_and_bad_arguments_are_refused():
    image = torch.rand(1, 1, 4, 4, requires_grad=True)
    grid = torch.zeros(1, 2, 2, 2)
    assert grid_sample_bilinear(image, grid).grad_fn.name().startswith("GridSampler2D")
    with pytest.raises(ValueError, match="padding_mode"):
        gather_bilinear(image, grid, "reflection")
    with pytest.raises(ValueError, match="grid"):
        gather_bilinear(image, grid[0])

"""The paper's losses on inputs with known answers."""
import torch

from backend import losses


def test_pixel_loss_is_l21_over_mask():
    img = torch.zeros(1, 2, 2, 3)
    ren = torch.zeros(1, 2, 2, 3)
    ren[0, 0, 0] = torch.tensor([3.0, 4.0, 0.0])  # distance 5 (not squared: 25)
    ren[0, 1, 1] = torch.tensor([1.0, 0.0, 0.0])  # masked out
    mask = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert torch.isclose(losses.pixel_loss(img, ren, mask, value_range=1.0), torch.tensor(2.5), atol=1e-3)
    assert torch.isclose(losses.pixel_loss(img / 255, ren / 255, mask), torch.tensor(2.5), atol=1e-3)


def test_pixel_loss_censors_clipped_photo_channels():
    """A photo channel at the clip level only bounds the render from below: brighter costs
    nothing (and pulls nothing), darker costs its full distance; other channels stay two-sided."""
    img = torch.tensor([[[[1.0, 0.5, 0.5]]]])  # red clipped
    mask = torch.ones(1, 1, 1)
    brighter = torch.tensor([[[[1.3, 0.5, 0.5]]]], requires_grad=True)
    loss = losses.pixel_loss(img, brighter, mask)
    loss.backward()
    assert float(loss.detach()) < 0.01 and float(brighter.grad.abs().max()) == 0.0
    darker = torch.tensor([[[[0.8, 0.5, 0.5]]]])
    assert torch.isclose(losses.pixel_loss(img, darker, mask), torch.tensor(0.2 * 255), rtol=1e-3)
    green_off = torch.tensor([[[[1.3, 0.6, 0.5]]]])  # unclipped green 0.1 too bright still counts
    assert torch.isclose(losses.pixel_loss(img, green_off, mask), torch.tensor(0.1 * 255), rtol=1e-3)
    # without censoring the brighter render costs its distance
    assert torch.isclose(losses.pixel_loss(img, brighter.detach(), mask, saturation=None), torch.tensor(0.3 * 255), rtol=1e-3)


def test_landmark_loss_mean_squared_distance():
    pred = torch.zeros(2, 68, 2)
    target = torch.zeros(2, 68, 2)
    target[:, :, 0] = 3.0
    target[:, :, 1] = 4.0
    assert torch.isclose(losses.landmark_loss(pred, target), torch.tensor(25.0))


def test_param_regularizer_weights():
    w = losses.CoarseLossWeights()
    reg = losses.param_regularizer(torch.ones(1, 2), torch.ones(1, 3), torch.ones(1, 4), w)
    assert torch.isclose(reg, torch.tensor(1.3 + 1.0 + 1.3))  # mean squares
    assert (w.pixel, w.landmark, w.identity, w.reg) == (1.3, 1.0, 1.5, 20.0)


def test_smooth_loss_zero_for_constant_and_counts_neighbours():
    mask = torch.ones(1, 1, 4, 4)
    const = torch.full((1, 1, 4, 4), 2.0)
    assert losses.smooth_loss(const, torch.zeros(1, 3, 4, 4), mask) == 0
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4).contiguous()  # +1 per column
    # pairs: horizontal 12 (diff 1), vertical 12 (0), diagonals 9 + 9 (diff 1): mean = 30/42
    expected = 10.0 * 30.0 / 42.0
    assert torch.isclose(losses.smooth_loss(ramp, torch.zeros(1, 3, 4, 4), mask), torch.tensor(expected))


def test_disp_loss_weights():
    w = losses.DetailLossWeights()
    disp = torch.full((1, 1, 2, 2), 2.0)
    dn = torch.zeros(1, 3, 2, 2)
    dn[:, 0] = 1.0
    assert torch.isclose(losses.disp_loss(disp, dn, torch.ones(1, 1, 2, 2), w), torch.tensor(0.5 + 0.01 * 4))
    assert (w.pixel, w.smooth, w.disp, w.w_sn, w.w_sz, w.w_dn, w.w_dz) == (1.0, 10.0, 10.0, 20.0, 10.0, 0.5, 0.01)

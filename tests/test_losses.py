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


def _sampled_relief(size: int, tile_mm: float = 282.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One smooth relief (1 mm, 20–30 mm wavelengths) sampled on a flat size² tile: the
    displacement (1,1,S,S) mm and the change of the unit normal it causes (1,3,S,S)."""
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size * tile_mm
    y, x = torch.meshgrid(c, c, indexing="ij")
    kx, ky = 2 * torch.pi / 30.0, 2 * torch.pi / 20.0
    h = torch.sin(kx * x) * torch.cos(ky * y)
    hx, hy = kx * torch.cos(kx * x) * torch.cos(ky * y), -ky * torch.sin(kx * x) * torch.sin(ky * y)
    n = torch.stack([-hx, -hy, torch.ones_like(h)])
    dn = n / n.norm(dim=0, keepdim=True) - torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)[:, None, None]
    return h[None, None], dn[None]


def test_smooth_weight_follows_the_map_size():
    """The same surface costs the same weighted L_smooth at 128², 256² and 512²: the paper's
    256² weight carried by (S/256)². Unscaled, the term changes ≈ 4× per octave."""
    w = losses.DetailLossWeights()
    assert losses.weights_at_uv_size(w, 256) == w
    assert losses.weights_at_uv_size(w, 512).smooth == 40.0 and losses.weights_at_uv_size(w, 128).smooth == 2.5
    raw, weighted = {}, {}
    for size in (128, 256, 512):
        h, dn = _sampled_relief(size)
        raw[size] = float(losses.smooth_loss(h, dn, torch.ones_like(h), w))
        weighted[size] = losses.weights_at_uv_size(w, size).smooth * raw[size]
    assert 3.5 < raw[128] / raw[256] < 4.5 and 3.5 < raw[256] / raw[512] < 4.5
    for size in (128, 512):
        assert abs(weighted[size] / weighted[256] - 1.0) < 0.1, weighted


def test_detail_fit_uses_the_smooth_weight_of_its_map_size(face_model, monkeypatch):
    import backend.fit.detail as fd

    seen = []

    def spy(disp, dn, mask, weights):
        seen.append((disp.shape[-1], weights.smooth))
        return losses.smooth_loss(disp, dn, mask, weights)

    monkeypatch.setattr(fd, "smooth_loss", spy)
    m = face_model
    fit = fd.CoarseFitResult(id=torch.zeros(1, m.n_id), exp=torch.zeros(1, m.n_exp),
                             pose=torch.tensor([[0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]), sh=torch.zeros(1, 27),
                             albedo=torch.full((1, 8, 16, 3), 0.6), tex=None, verts=m.mean[None],
                             landmarks=torch.zeros(1, 68, 2))
    image = torch.full((1, 64, 64, 3), 0.5)
    fd.fit_detail(m, fit, image, torch.ones(1, 64, 64), fd.DetailFitConfig(uv_size=64, steps=1, render_size=64))
    assert seen == [(64, 10.0 * (64 / 256) ** 2)]

"""The detail stage's shading gate: which residuals against the coarse render a change of
shading explains (backend/fit/shading_gate.py). Analytic images: a skin-coloured render and
photos made from it by shading changes, paint, strands and a dark albedo."""
from types import SimpleNamespace

import torch

from backend.fit.shading_gate import ShadingGate, shading_explained

R = 224
SKIN = torch.tensor([0.78, 0.56, 0.45])


def _scene():
    """A render of plain skin under a smooth light, its mask (a disc), pixel coordinates."""
    y, x = torch.meshgrid(torch.arange(R, dtype=torch.float32), torch.arange(R, dtype=torch.float32), indexing="ij")
    shade = (0.7 + 0.3 * x / R)[..., None]  # (R,R,1) broad light gradient
    albedo = SKIN.expand(R, R, 3).clone()
    mask = (((x - 112) ** 2 + (y - 112) ** 2) < 95**2).float()
    return albedo, shade, mask, x, y


def _gate(photo, albedo, shade, mask, gate=ShadingGate()):
    rend = SimpleNamespace(image=(albedo * shade)[None], albedo=albedo[None])
    return shading_explained(photo[None], rend, mask[None], gate)[0]


def _wrinkles(x, y) -> torch.Tensor:
    """Crease-like brightness factors 0.6–1.15 (grey): what fine geometry does to the shading."""
    return (0.875 + 0.275 * torch.sin(2 * torch.pi * y / 9.0) * torch.sin(2 * torch.pi * x / 23.0))[..., None]


def test_shading_changes_keep_their_weight():
    """Grey creases (×0.6–1.15), and creases that redden the skin as they darken (shadow on skin:
    log R/G up 0.4 per unit of log darkening), keep weight 1 inside the mask."""
    albedo, shade, mask, x, y = _scene()
    f = _wrinkles(x, y)
    inner = mask.bool() & (((x - 112) ** 2 + (y - 112) ** 2) < 85**2)
    grey = _gate(albedo * shade * f, albedo, shade, mask)
    assert grey[inner].min() > 0.99
    redder = f * torch.exp(-torch.log(f) * torch.tensor([0.4, 0.0, -0.3]))  # darker → relatively redder
    assert _gate(albedo * shade * redder, albedo, shade, mask)[inner].mean() > 0.98


def test_paint_strands_and_dark_albedo_lose_their_weight():
    """A blue disc of paint, a pink one, a dark strand (×0.25, grey), a patch whose coarse
    albedo took in hair (×0.4) and one where it took in grey fabric (the photo matching it) get
    weight 0, with their borders grown by ``grow_px``; skin away from them keeps weight 1."""
    albedo, shade, mask, x, y = _scene()
    photo = albedo * shade * _wrinkles(x, y)
    blue = ((x - 80) ** 2 + (y - 90) ** 2) < 10**2
    pink = ((x - 150) ** 2 + (y - 90) ** 2) < 10**2
    strand = ((y - 150).abs() < 1.5) & ((x - 112).abs() < 40)
    photo[blue] = torch.tensor([0.15, 0.25, 0.7]) * shade[blue]
    photo[pink] = torch.tensor([0.85, 0.35, 0.6]) * shade[pink]
    photo[strand] = photo[strand] * 0.25
    hair = ((x - 112).abs() < 12) & ((y - 40).abs() < 8)
    albedo_hair = albedo.clone()
    albedo_hair[hair] = albedo[hair] * 0.4
    fabric = ((x - 112).abs() < 10) & ((y - 185).abs() < 6)
    albedo_hair[fabric] = 0.5
    photo[fabric] = 0.5 * shade[fabric]
    w = _gate(photo, albedo_hair, shade, mask)
    for region in (blue, pink, strand, hair, fabric):
        assert w[region].max() < 0.05
    # the soft rim of each disc goes too (grown by 2 px), skin 8 px from them stays
    ring = ((x - 80) ** 2 + (y - 90) ** 2 - 11.5**2).abs() < 10
    assert w[ring].mean() < 0.2
    away = mask.bool() & ~((((x - 80) ** 2 + (y - 90) ** 2) < 18**2) | (((x - 150) ** 2 + (y - 90) ** 2) < 18**2)
                           | (((y - 150).abs() < 9) & ((x - 112).abs() < 48))
                           | (((x - 112).abs() < 20) & ((y - 40).abs() < 16))
                           | (((x - 112).abs() < 18) & ((y - 185).abs() < 14)))
    away &= ((x - 112) ** 2 + (y - 112) ** 2) < 85**2
    assert w[away].mean() > 0.97


def test_a_render_below_zero_gives_finite_weights():
    """A 2nd-order SH light fitted to a hard side light turns negative on the faces turned from it,
    so the coarse render goes below 0 there (-0.04 on helen_train_2201151487_1). The gate's log
    ratio was NaN there, the NaN mask made the whole detail fit NaN and the head's displacement,
    normals and albedo with it, without a word."""
    albedo, shade, mask, x, y = _scene()
    shade = (1.2 * x / R - 0.25)[..., None]  # from -0.25 at the left edge to 0.95
    photo = (albedo * shade).clamp_min(0.0) * _wrinkles(x, y)
    w = _gate(photo, albedo, shade, mask)
    assert bool(torch.isfinite(w).all())
    lit = mask.bool() & (x > 120)
    assert w[lit].mean() > 0.9  # the lit side's creases keep their weight

"""Stage-1 encoder and stage-2 U-Net: shapes, initial outputs, config round trips, gradients."""
from __future__ import annotations

import pytest
import torch

from backend.lighting import sh_ambient
from backend.nets import (
    DetailUNet, EncoderConfig, FaceEncoder, UNetConfig, build_encoder, build_unet, count_parameters, decompose,
    frontal_pose_for_crop,
)


def test_vgg16_structure_matches_vgg_face():
    enc = FaceEncoder(EncoderConfig(arch="vgg16", in_size=224, n_id=80, n_exp=64, n_tex=80))
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in enc.features) == 5
    linears = [m for m in enc.modules() if isinstance(m, torch.nn.Linear)]
    assert [l.out_features for l in linears] == [4096, 4096, 80 + 64 + 80 + 27 + 7]
    assert linears[0].in_features == 512 * 7 * 7
    # VGG-16 conv + fc1/fc2 parameters = 134.26 M (VGG-Face without its 2622-way classifier)
    assert 134.2e6 < count_parameters(enc) - (4096 + 1) * 258 < 134.3e6


@pytest.mark.parametrize("arch,size", [("light", 64), ("vgg16", 64)])
def test_encoder_initial_prediction_is_mean_face_frontal_ambient(arch, size):
    torch.manual_seed(0)
    pose0 = (0.5, 0.0, 0.0, 0.0, 1.0, -2.0, 0.0)
    cfg = EncoderConfig(arch=arch, in_size=size, n_id=10, n_exp=5, n_tex=3, width=0.25, fc_dim=64, init_pose=pose0)
    enc = FaceEncoder(cfg)
    code = enc(torch.rand(3, 3, size, size))
    assert code.shape == (3, cfg.code_dim) == (3, 10 + 5 + 3 + 27 + 7)
    p = enc.decompose(code)
    assert {k: v.shape[1] for k, v in p.items()} == {"id": 10, "exp": 5, "tex": 3, "sh": 27, "pose": 7}
    assert p["id"].abs().max() < 1e-2 and p["exp"].abs().max() < 1e-2 and p["tex"].abs().max() < 1e-2
    assert torch.allclose(p["sh"], sh_ambient(1.0, 3), atol=1e-2)
    assert torch.allclose(p["pose"], torch.tensor([pose0] * 3), atol=0.05)
    code.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_encoder_zero_tex_and_config_round_trip():
    cfg = EncoderConfig(arch="light", in_size=32, n_id=4, n_exp=2, n_tex=0, width=0.25)
    enc = build_encoder(cfg.to_dict())
    assert enc.config == cfg
    parts = decompose(torch.zeros(2, cfg.code_dim), cfg)
    assert parts["tex"].shape == (2, 0)
    with pytest.raises(ValueError):
        decompose(torch.zeros(2, cfg.code_dim + 1), cfg)
    with pytest.raises(ValueError):
        EncoderConfig(arch="resnet50")
    with pytest.raises(ValueError):
        enc(torch.zeros(1, 1, 32, 32))


def test_frontal_pose_for_crop_maps_landmarks_into_crop():
    from backend.camera import Camera, project

    lm = torch.tensor([[-50.0, 60.0, 10.0], [50.0, -40.0, 0.0], [0.0, 0.0, 20.0]])
    pose = torch.tensor([frontal_pose_for_crop(lm, 100, landmark_span=0.5)])
    screen = project(lm[None], pose, Camera(100, 100))[0, :, :2]
    span = screen.max(0).values - screen.min(0).values
    assert span.max().item() == pytest.approx(0.5 * 100, rel=1e-5)
    centre = (screen.max(0).values + screen.min(0).values) / 2
    assert torch.allclose(centre, torch.tensor([49.5, 49.5]), atol=1e-4)


@pytest.mark.parametrize("size", [32, 64])
def test_unet_shapes_bound_and_near_zero_init(size):
    torch.manual_seed(0)
    net = DetailUNet(UNetConfig(size=size, ngf=8, max_mm=3.0))
    assert len(net.down) == {32: 5, 64: 6}[size]  # down to 1×1
    x = torch.rand(2, 6, size, size)
    y = net(x)
    assert y.shape == (2, 1, size, size)
    assert y.abs().max() < 0.05  # ~0 at init
    # the bound holds whatever the last layer does
    with torch.no_grad():
        net.out_conv.weight.normal_(0, 10.0)
    y = net(x)
    assert y.abs().max() <= 3.0 + 1e-6 and y.abs().max() > 2.0


def test_unet_skip_connections_and_mask():
    torch.manual_seed(0)
    net = DetailUNet(UNetConfig(size=32, ngf=8, norm="instance"))
    with torch.no_grad():
        net.out_conv.weight.normal_(0, 0.05)
    x = torch.rand(1, 6, 32, 32, requires_grad=True)
    y = net(x)
    y[0, 0, 5, 5].backward()
    # a skip path makes the output pixel depend most on its own neighbourhood
    g = x.grad.abs().sum(1)[0]
    assert g[:12, :12].sum() > g[20:, 20:].sum()
    mask = torch.zeros(1, 1, 32, 32)
    assert torch.allclose(net(x, mask), net(torch.zeros_like(x)))
    with pytest.raises(ValueError):
        net(torch.rand(1, 6, 64, 64))


def test_unet_config_validation_and_round_trip():
    for bad in (dict(size=48), dict(size=16), dict(norm="layer"), dict(max_mm=0)):
        with pytest.raises(ValueError):
            UNetConfig(**bad)
    cfg = UNetConfig(size=64, ngf=4, dropout=0.5)
    assert build_unet(cfg.to_dict()).config == cfg

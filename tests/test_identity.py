"""Identity network (dlib face-recognition ResNet ported to PyTorch) against dlib itself.

The dlib comparisons run on real faces from the shared dev set (skipped when absent); the rest
uses analytic cases and the weights shipped in ``face-recognition-models``.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.errors import WeightsFormatError, WeightsNotFoundError
from backend.identity import (
    MEAN_FACE_TEMPLATE,
    FaceIdentity,
    SAME_PERSON_THRESHOLD,
    IdentityNet,
    extract_chips,
    face_chip_transform,
    identity_features,
    load_identity_net,
)
from backend.identity.dlib_format import DlibReader, read_dlib_net
from backend.identity.network import _padded_add, dlib_weights_path

N_FACES = 22  # photos tried; at least 20 must be detected


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(scope="module")
def weights_file() -> Path:
    try:
        return dlib_weights_path()
    except WeightsNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def net(weights_file, tmp_path_factory) -> IdentityNet:
    with pytest.MonkeyPatch.context() as mp:  # keep the converted .pt out of the user's cache
        mp.setenv("PHOTOHEAD_CACHE", str(tmp_path_factory.mktemp("cache")))
        return load_identity_net()


@pytest.fixture(scope="module")
def dlib_tools(weights_file):
    dlib = pytest.importorskip("dlib")
    models = weights_file.parent
    return {
        "dlib": dlib,
        "detector": dlib.get_frontal_face_detector(),
        "predictor": dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat")),
        "recognizer": dlib.face_recognition_model_v1(str(weights_file)),
    }


def _dlib_face(tools, img: np.ndarray):
    """(shape, chip (150,150,3) uint8, descriptor (128,)) of the first HOG detection, or None."""
    dets = tools["detector"](img, 0)
    if len(dets) == 0:
        return None
    shape = tools["predictor"](img, dets[0])
    chip = tools["dlib"].get_face_chip(img, shape, 150, 0.25)
    desc = np.array(tools["recognizer"].compute_face_descriptor(chip))
    return shape, chip, desc


@pytest.fixture(scope="module")
def faces(faces_dev, dlib_tools):
    """Real faces: photo, dlib landmarks, dlib chip and dlib descriptor for each detected face."""
    from PIL import Image

    out = {"names": [], "images": [], "landmarks": [], "chips": [], "descs": []}
    for path in sorted((faces_dev / "images").glob("*.jpg"))[:N_FACES]:
        img = np.asarray(Image.open(path).convert("RGB"))
        found = _dlib_face(dlib_tools, img)
        if found is None:
            continue
        shape, chip, desc = found
        out["names"].append(path.name)
        out["images"].append(img)
        out["landmarks"].append([[shape.part(i).x, shape.part(i).y] for i in range(68)])
        out["chips"].append(chip)
        out["descs"].append(desc)
    if len(out["names"]) < 20:
        pytest.fail(f"HOG found only {len(out['names'])} of {N_FACES} dev faces")
    out["shapes_img"] = np.stack(out["images"])
    return out


def _to_tensor(images: list[np.ndarray] | np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(dtype) / 255.0


# ------------------------------------------------------------------------------------------
# the reader


def test_reader_primitive_encodings():
    # dlib pack_int: header = byte count | 0x80 if negative, then little-endian magnitude
    r = DlibReader(bytes([0x01, 0x00, 0x81, 0x11, 0x02, 0x80, 0x12, 0x01, 0x96]))
    assert [r.int(), r.int(), r.int(), r.int()] == [0, -17, 4736, 150]
    # float_details: mantissa 0xa3d70a · 2^-28 = 0.04; exponent 32000 = +inf; then bools and a string
    r = DlibReader(bytes([0x03, 0x0A, 0xD7, 0xA3, 0x81, 0x1C, 0x01, 0x01, 0x02, 0x00, 0x7D])
                   + b"10" + bytes([0x01, 0x04]) + b"fc_2")
    assert r.float() == pytest.approx(0.04, rel=1e-7)
    assert r.float() == math.inf
    assert (r.bool(), r.bool(), r.string()) == (True, False, "fc_2")
    assert r.at_end()
    # tensor: version 2, shape (1,2,1,1), float32 little endian
    r = DlibReader(bytes([1, 2, 1, 1, 1, 2, 1, 1, 1, 1]) + struct.pack("<2f", 1.5, -2.0))
    np.testing.assert_array_equal(r.tensor(), np.array([1.5, -2.0], np.float32).reshape(1, 2, 1, 1))
    with pytest.raises(WeightsFormatError, match="end of file"):
        DlibReader(bytes([0x02, 0x01])).int()
    with pytest.raises(WeightsFormatError, match="integer header"):
        DlibReader(bytes([0x31])).int()


def test_reader_parses_the_shipped_network(weights_file):
    parsed = read_dlib_net(weights_file)
    assert parsed.loss == "loss_metric_2"
    assert parsed.loss_config["distance_threshold"] == pytest.approx(0.6, abs=1e-6)
    assert parsed.loss_config["margin"] == pytest.approx(0.04, abs=1e-6)
    assert parsed.input_size == (150, 150)
    np.testing.assert_allclose(parsed.input_mean_rgb, (122.782, 117.001, 104.298), atol=1e-4)
    kinds = [layer.kind for layer in parsed.layers]
    assert len(kinds) == 108 and kinds[:4] == ["con", "affine", "relu", "max_pool"] and kinds[-1] == "fc"
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds.count("avg_pool") == 5
    n_params = sum(p.size for layer in parsed.layers for p in layer.params.values())
    # every float32 of the file is accounted for: 4 bytes per parameter plus a small header/config part
    assert 0 < weights_file.stat().st_size - 4 * n_params < 20_000
    assert parsed.layers[-1].params["weight"].shape == (128, 256)


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_identity_net(tmp_path / "nope.dat")
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(WeightsFormatError):
        load_identity_net(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(3)}, foreign)
    with pytest.raises(WeightsFormatError, match="do not fit"):
        load_identity_net(foreign)


def test_net_is_frozen_and_pt_weights_round_trip(net, tmp_path):
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    path = tmp_path / "other.pt"
    torch.save(net.state_dict(), path)
    other = load_identity_net(path)
    x = torch.rand(2, 3, 150, 150, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(other(x), net(x), rtol=0, atol=0)


def test_cache_is_written_and_reused(weights_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOHEAD_CACHE", str(tmp_path))
    first = load_identity_net()
    cached = tmp_path / "weights" / "dlib_face_recognition_resnet_model_v1.pt"
    assert cached.exists()
    doc = torch.load(cached, weights_only=True)
    assert doc["source"] == weights_file.name and "fc.weight" in doc["state_dict"]
    doc["state_dict"]["fc.weight"] = doc["state_dict"]["fc.weight"] * 2  # prove the cache is what loads
    torch.save(doc, cached)
    assert torch.equal(load_identity_net().fc.weight, 2 * first.fc.weight)
    cached.write_bytes(b"garbage")  # an unreadable cache is re-parsed with a warning
    with pytest.warns(UserWarning, match="unreadable"):
        again = load_identity_net()
    assert torch.equal(again.fc.weight, first.fc.weight)


def test_padded_add_zero_pads_like_dlib_add_prev():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 4, 2, 2), 10.0)
    out = _padded_add(a, b)
    assert out.shape == (1, 4, 3, 3)
    assert out[0, 0, 0, 0] == 11 and out[0, 0, 2, 2] == 1 and out[0, 3, 1, 1] == 10 and out[0, 3, 2, 2] == 0


# ------------------------------------------------------------------------------------------
# framing


def test_chip_transform_of_template_is_dlibs_half_pixel_shift():
    size, padding = 150, 0.25
    lm = torch.zeros(1, 68, 2, dtype=torch.float64)
    from backend.identity.chips import _TEMPLATE_INDICES

    lm[0, list(_TEMPLATE_INDICES)] = (padding + torch.tensor(MEAN_FACE_TEMPLATE, dtype=torch.float64)) / 1.5 * size
    A = face_chip_transform(lm, size, padding)
    # Identity similarity: dlib centres the chip rect on T(size/2), i.e. +0.5 px from the pixel grid centre.
    torch.testing.assert_close(A[0], torch.tensor([[1.0, 0, 0.5], [0, 1.0, 0.5]], dtype=torch.float64))
    # Rotate by 30° and scale by 2 about the origin, shift by (7, -3): the linear part follows.
    th = math.radians(30)
    R = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], dtype=torch.float64)
    A2 = face_chip_transform(2 * lm @ R.T + torch.tensor([7.0, -3.0], dtype=torch.float64), size, padding)
    k = (size * 2 - 1) / (size - 1)
    torch.testing.assert_close(A2[0, :, :2], k * R)


def test_chip_transform_matches_dlib_chip_details(faces, dlib_tools):
    dlib = dlib_tools["dlib"]
    lm = torch.tensor(faces["landmarks"], dtype=torch.float64)
    A = face_chip_transform(lm, 150, 0.25)
    for i, pts in enumerate(faces["landmarks"]):
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10), [dlib.point(x, y) for x, y in pts])
        d = dlib.get_face_chip_details(shape, 150, 0.25)
        # dlib maps chip pixel (0,0) to the rect's top-left corner rotated by `angle` about its centre
        cx, cy = (d.rect.left() + d.rect.right()) / 2, (d.rect.top() + d.rect.bottom()) / 2
        half_w = (d.rect.right() - d.rect.left()) / 2
        ca, sa = math.cos(d.angle), math.sin(d.angle)
        corner = (cx - half_w * ca + half_w * sa, cy - half_w * sa - half_w * ca)
        np.testing.assert_allclose(A[i, :, 2].numpy(), corner, atol=1e-6)
        np.testing.assert_allclose(math.atan2(A[i, 1, 0], A[i, 0, 0]), d.angle, atol=1e-9)


def test_extract_chips_reproduces_dlib_get_face_chip(faces, net):
    images = _to_tensor(faces["images"])
    lm = torch.tensor(faces["landmarks"], dtype=torch.float32)
    ours = extract_chips(images, face_chip_transform(lm))
    theirs = _to_tensor(faces["chips"])
    # dlib truncates to uint8 (≈ −0.5 grey levels on average); allow a little more for bilinear rounding
    mad = (ours - theirs).abs().mean(dim=(1, 2, 3)) * 255
    assert mad.max() < 1.0, mad
    with torch.no_grad():
        feats = identity_features(images, lm, net).numpy()
        torch.testing.assert_close(FaceIdentity(net)(images[:2], lm[:2]), torch.from_numpy(feats[:2]))
    cos = _cos(feats, np.stack(faces["descs"]))
    assert cos.min() >= 0.99, cos


@pytest.mark.slow
def test_extract_chips_approximates_dlib_pyramid_on_large_faces(faces, net, dlib_tools):
    """Faces 3× larger than the chip needs: dlib samples a downsampled pyramid level; our blur
    approximation keeps descriptors close (measured cos ≥ 0.998, mean abs diff ≈ 2.7 grey levels)."""
    from PIL import Image

    dlib, fac = dlib_tools["dlib"], 3.0
    bigs, lms, descs = [], [], []
    for img, pts in zip(faces["images"][:3], faces["landmarks"][:3]):
        big = np.asarray(Image.fromarray(img).resize((int(img.shape[1] * fac), int(img.shape[0] * fac)),
                                                     Image.BICUBIC))
        p = [dlib.point(int(round((x + 0.5) * fac - 0.5)), int(round((y + 0.5) * fac - 0.5))) for x, y in pts]
        shape = dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10), p)
        chip = dlib.get_face_chip(big, shape, 150, 0.25)
        descs.append(np.array(dlib_tools["recognizer"].compute_face_descriptor(chip)))
        bigs.append(big)
        lms.append([[q.x, q.y] for q in p])
    with torch.no_grad():
        feats = identity_features(_to_tensor(bigs), torch.tensor(lms, dtype=torch.float32), net).numpy()
    assert _cos(feats, np.stack(descs)).min() >= 0.99


# ------------------------------------------------------------------------------------------
# descriptors


def test_descriptors_match_dlib(faces, net):
    with torch.no_grad():
        ours = net(_to_tensor(faces["chips"])).numpy()
    theirs = np.stack(faces["descs"])
    cos = _cos(ours, theirs)
    assert cos.min() >= 0.999, cos
    assert np.abs(ours - theirs).max() < 1e-3


def test_same_and_different_person_decisions_agree_with_dlib(faces, net, dlib_tools):
    # the same face, shifted by (5, 3) px and brightened, re-detected → distance < 0.6 for both nets
    n = 5
    shifted_chips, shifted_descs = [], []
    for img in faces["images"][:n]:
        moved = np.zeros_like(img)
        moved[3:, 5:] = img[:-3, :-5]
        moved = np.clip(moved.astype(np.float32) * 1.15 + 12, 0, 255).astype(np.uint8)
        found = _dlib_face(dlib_tools, moved)
        assert found is not None
        shifted_chips.append(found[1])
        shifted_descs.append(found[2])
    theirs = np.stack(faces["descs"])
    with torch.no_grad():
        ours = net(_to_tensor(faces["chips"])).numpy()
        ours_shifted = net(_to_tensor(shifted_chips)).numpy()
    same_theirs = np.linalg.norm(theirs[:n] - np.stack(shifted_descs), axis=1)
    same_ours = np.linalg.norm(ours[:n] - ours_shifted, axis=1)
    assert same_theirs.max() < SAME_PERSON_THRESHOLD and same_ours.max() < SAME_PERSON_THRESHOLD
    # different HELEN photos: mostly different people (a photographer's series may repeat someone)
    photo = [name.rsplit("_", 1)[0] for name in faces["names"]]
    iu = [(i, j) for i in range(len(photo)) for j in range(i + 1, len(photo)) if photo[i] != photo[j]]
    d_theirs = np.array([np.linalg.norm(theirs[i] - theirs[j]) for i, j in iu])
    d_ours = np.array([np.linalg.norm(ours[i] - ours[j]) for i, j in iu])
    assert (d_theirs > SAME_PERSON_THRESHOLD).mean() > 0.9
    assert (d_ours > SAME_PERSON_THRESHOLD).mean() > 0.9
    decided = np.abs(d_theirs - SAME_PERSON_THRESHOLD) > 1e-3  # ignore knife-edge pairs
    assert np.array_equal((d_ours < 0.6)[decided], (d_theirs < 0.6)[decided])
    np.testing.assert_allclose(d_ours, d_theirs, atol=2e-3)


# ------------------------------------------------------------------------------------------
# gradients


def test_features_are_differentiable_wrt_the_image(net):
    """Finite differences (float64) on a few pixels agree with autograd through framing + net."""
    net64 = IdentityNet()
    net64.load_state_dict(net.state_dict())
    net64 = net64.double().requires_grad_(False).eval()
    gen = torch.Generator().manual_seed(3)
    H = W = 64
    # a smooth random image, and landmarks = the chip template scaled into it
    image = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=gen, dtype=torch.float64),
                                            size=(H, W), mode="bicubic", align_corners=True).clamp(0, 1)
    from backend.identity.chips import _TEMPLATE_INDICES

    lm = torch.full((1, 68, 2), 32.0, dtype=torch.float64)
    lm[0, list(_TEMPLATE_INDICES)] = torch.tensor(MEAN_FACE_TEMPLATE, dtype=torch.float64) * 40 + 12
    probe = torch.randn(128, generator=gen, dtype=torch.float64)

    def objective(img: torch.Tensor) -> torch.Tensor:
        return identity_features(img, lm, net64) @ probe

    x = image.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(x).sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    # two finite differences: the most sensitive pixel, and a random direction over 6 pixels
    flat = grad.flatten()
    top = flat.abs().argmax().item()
    few = torch.randperm(flat.numel(), generator=gen)[:6]
    directions = [torch.zeros_like(flat), torch.zeros_like(flat)]
    directions[0][top] = 1.0
    directions[1][few] = torch.randn(6, generator=gen, dtype=torch.float64)
    eps = 1e-5
    for d in directions:
        d = d.view_as(image)
        fd = (objective(image + eps * d) - objective(image - eps * d)).item() / (2 * eps)
        assert fd == pytest.approx((grad * d).sum().item(), rel=1e-4, abs=1e-8)

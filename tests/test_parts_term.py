"""The parts in the coarse fit (backend.fit.parts_term): the eye/mouth region from landmarks, the
gaze → eyeLook* weights, and one render of skin + parts whose region term reaches only the part
colours, the gaze and the pose."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.fit.parts_term import PartsFitConfig, landmark_region


def test_landmark_region_is_the_polygons_dilated():
    lm = torch.zeros(1, 68, 2)
    lm[0, :] = 1000.0  # far outside; only the region's polygons count
    square = torch.tensor([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    lm[0, 36:42] = torch.cat([square, square[:2]])  # eye contour: a 10×10 px square (repeated corners)
    lm[0, 42:48] = torch.cat([square + 30, (square + 30)[:2]])
    octagon = torch.tensor([[10.0, 10.0], [15.0, 10.0], [20.0, 10.0], [20.0, 15.0], [20.0, 20.0], [15.0, 20.0],
                            [10.0, 20.0], [10.0, 15.0]])  # the same square through its edge midpoints
    lm[0, 60:68] = octagon + torch.tensor([0.0, 30.0])
    region = landmark_region(lm, 64, dilate=0.0)[0]
    # a closed 10×10 square holds 11×11 pixel centres (edges included)
    assert int(region[5:25, 5:25].sum()) == 121
    assert int(region.sum()) == 3 * 121
    dilated = landmark_region(lm, 64, dilate=2.0)[0]
    assert dilated[8, 15] == 1 and dilated[7, 15] == 0  # 2 px above the top edge, not 3


@pytest.fixture
def ict(face_model):
    """The ICT model with its parts (conftest's ``face_model``); skips without ict_parts.npz."""
    if not face_model.has_parts:
        pytest.skip("the ICT model has no ict_parts.npz beside it")
    return face_model


def test_turn_eyes_is_a_rotation_about_each_centre():
    from backend.fit.parts_term import turn_eyes

    ball = torch.tensor([[0.0, 0.0, 12.0], [0.0, 0.0, -12.0], [12.0, 0.0, 0.0], [-12.0, 0.0, 0.0]])
    parts = torch.cat([ball + torch.tensor([30.0, 0.0, 0.0]), ball - torch.tensor([30.0, 0.0, 0.0]), torch.ones(2, 3)])[None]
    angles = torch.tensor([[[np.pi / 2, 0.0], [0.0, np.pi / 2]]])
    out = turn_eyes(parts, [torch.arange(4), torch.arange(4, 8)], angles)[0]
    torch.testing.assert_close(out[0], torch.tensor([42.0, 0.0, 0.0]), atol=1e-5, rtol=0)  # yaw: cornea to +x
    torch.testing.assert_close(out[4], torch.tensor([-30.0, -12.0, 0.0]), atol=1e-5, rtol=0)  # pitch: cornea down
    torch.testing.assert_close(out[8:], parts[0, 8:])  # other rows untouched
    assert parts[0, 0, 2] == 12.0  # the input is not modified


def test_parts_render_and_region_gradient(ict):
    """Skin + parts rendered front-on: the eyes show sclera/iris where the skin-only render shows
    background, the region term's gradient reaches colours and gaze but not the light or albedo."""
    from backend.camera import Camera
    from backend.fit.parts_term import PartsTerm
    from backend.render.renderer import RenderSettings, render

    S = 96
    ident, exp = torch.zeros(1, ict.n_id), torch.zeros(1, ict.n_exp)
    verts = ict(ident, exp)
    lm_vid = ict.landmarks68
    pose = torch.tensor([[S / 200.0, 0, 0, 0, 0, -S * 0.05, 0]])
    from backend.camera import project

    lms = project(verts, pose, Camera(S, S))[:, lm_vid, :2]
    term = PartsTerm(ict, PartsFitConfig(enabled=True), lms, 1)
    term.start()
    sh = torch.zeros(1, 27)
    sh[0, [0, 9, 18]] = 1.0
    sh.requires_grad_(True)
    albedo = torch.full((1, 16, 32, 3), 0.6, requires_grad=True)
    settings = RenderSettings(u_range=(0.0, 2.0))
    rend = term.render(verts, ident, exp, pose, Camera(S, S), sh, albedo, settings)
    skin_only = render(verts, ict.faces, pose, Camera(S, S), sh.detach(), texture=albedo.detach(), uv=ict.uv,
                       faces_uv=ict.faces_uv, settings=settings)
    region = term.region(S, S)
    eyes = region.bool() & term.part_face[rend.face_idx.clamp_min(0)] & rend.mask
    assert int(eyes.sum()) > 10  # the eyeballs fill the eye openings
    face_tri = ict.face_vertex_mask[ict.faces].all(-1)
    seen = skin_only.face_idx[eyes]
    assert not (face_tri[seen.clamp_min(0)] & (seen >= 0)).any()  # skin only: the inside of the skull there
    photo = torch.zeros(1, S, S, 3)
    losses = term.losses(photo, rend, region)
    (losses["parts"] + losses["parts_reg"]).backward()
    assert term.colours.grad is not None and term.colours.grad.abs().sum() > 0
    assert term.gaze.grad is not None and term.gaze.grad.abs().sum() > 0  # the iris moves with the gaze
    assert sh.grad is None or sh.grad.abs().sum() == 0
    assert albedo.grad is None or albedo.grad.abs().sum() == 0


def test_coarse_fit_with_parts_keeps_the_skin_fit(face_model, faces_dev, one_torch_thread):
    """A short coarse fit of an open-mouth dev photo with and without the parts: the skin's fit is
    bit-identical (the parts' render is detached from it), and the parts' region error falls as
    their colours fit the photo."""
    import dataclasses
    import json

    from backend.fit.coarse import CoarseFitConfig, fit_coarse
    from backend.prepare import prepare_view

    if not face_model.has_parts:
        pytest.skip("no ict_parts.npz")
    meta = json.loads((faces_dev / "landmarks.json").read_text())["images"]
    name = "helen_train_2212956363_1.jpg"  # a wide-open mouth (teeth and a dark interior)
    view = prepare_view(str(faces_dev / "images" / name), landmarks68=np.asarray(meta[name]["landmarks"], np.float32))
    t = lambda a: torch.from_numpy(np.asarray(a))[None].float()  # noqa: E731
    base = CoarseFitConfig(landmark_steps=20, photo_schedule=((64, 15),), identity=False)
    off = fit_coarse(face_model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask), base)
    on = fit_coarse(face_model, t(view.crop), t(view.crop_landmarks), t(view.skin_mask),
                    dataclasses.replace(base, parts=PartsFitConfig(enabled=True)))
    assert torch.equal(off.verts, on.verts) and torch.equal(off.albedo, on.albedo) and torch.equal(off.sh, on.sh)
    assert off.parts_colours is None and on.parts_colours.shape == (6, 3)
    first = on.history[-1]
    assert "parts" in first and first["parts"] > 0
    from backend.head_parts import PART_MATERIALS

    assert not torch.allclose(on.parts_colours, torch.tensor(list(PART_MATERIALS.values())))

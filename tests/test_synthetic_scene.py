"""The synthetic suite's less friendly renders (evaluation.synthetic_scene): eyes and teeth, hair,
perspective lens, coloured and second lights; deterministic per seed, the classic scene unchanged."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from backend.camera import Camera, project
from backend.lighting import sh_directional
from evaluation.metrics import similarity_align
from evaluation.synthetic import SCENES, SyntheticSettings, make_faces
from evaluation.synthetic_scene import hair_tile, perspective_pose, random_lights, scalp_faces

SMALL = dict(size=128, texture_size=32, yaw_max_deg=10.0, pitch_max_deg=3.0, roll_max_deg=2.0, face_fraction=0.6)


def _box_mask(points: np.ndarray, size: int, pad: float) -> np.ndarray:
    lo, hi = points.min(0) - pad, points.max(0) + pad
    ys, xs = np.mgrid[0:size, 0:size]
    return (xs >= lo[0]) & (xs <= hi[0]) & (ys >= lo[1]) & (ys <= hi[1])


def test_realistic_scene_is_deterministic_and_differs_from_classic(face_model):
    settings = replace(SCENES["realistic"], **SMALL)
    a = make_faces(face_model, 2, seed=5, settings=settings)
    b = make_faces(face_model, 2, seed=5, settings=settings)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.pose, y.pose)
        assert x.projection == "perspective"
    c = make_faces(face_model, 1, seed=5, settings=replace(SCENES["classic"], **SMALL))[0]
    assert c.projection == "orthographic" and not np.array_equal(c.image, a[0].image)
    np.testing.assert_array_equal(c.vertices, a[0].vertices)  # the same head, another scene
    assert SCENES["classic"] == SyntheticSettings() and SCENES["classic"].friendly and not settings.friendly


def test_parts_put_eyes_and_teeth_in_the_image(face_model):
    """With parts, only pixels near the eyes and the mouth change, and the eyes show a sclera
    brighter and an iris darker than the skin around them."""
    lit = dict(SMALL, ambient=(1.0, 1.0), directional=(0.0, 0.0), background=(0.5, 0.5, 0.5))
    with_parts = make_faces(face_model, 1, seed=2, settings=SyntheticSettings(parts=True, **lit))[0]
    without = make_faces(face_model, 1, seed=2, settings=SyntheticSettings(**lit))[0]
    np.testing.assert_array_equal(with_parts.landmarks68, without.landmarks68)
    lm = with_parts.landmarks68
    near = _box_mask(lm[36:42], 128, 3) | _box_mask(lm[42:48], 128, 3) | _box_mask(lm[48:68], 128, 3)
    changed = np.abs(with_parts.image.astype(int) - without.image.astype(int)).max(-1) > 2
    assert changed.sum() > 20 and not changed[~near].any()
    eyes = (_box_mask(lm[36:42], 128, 0) | _box_mask(lm[42:48], 128, 0)) & changed
    grey = with_parts.image.mean(-1)
    skin = np.median(grey[_box_mask(lm[27:36], 128, 0)])  # the nose
    assert grey[eyes].max() > skin + 40 and grey[eyes].min() < skin - 15  # sclera; iris or pupil


def test_perspective_changes_the_projection(face_model):
    """The perspective render's landmarks are the perspective projection of its vertices; a short
    lens bends them away from any similarity of the orthographic ones, a long lens hardly."""
    def landmarks(focal: float) -> tuple[np.ndarray, np.ndarray]:
        st = SyntheticSettings(projection="perspective", focal_35mm=(focal, focal), **SMALL)
        face = make_faces(face_model, 1, seed=4, settings=st)[0]
        screen = project(torch.from_numpy(face.vertices)[None], torch.from_numpy(face.pose)[None],
                         Camera(128, 128, "perspective"))[0, face_model.landmarks68, :2].numpy()
        np.testing.assert_allclose(screen, face.landmarks68, atol=1e-3)
        return face.landmarks68, face.pose

    ortho = make_faces(face_model, 1, seed=4, settings=SyntheticSettings(**SMALL))[0].landmarks68

    def residual(lm: np.ndarray) -> float:
        pad = lambda p: np.concatenate([p, np.zeros((68, 1))], 1)  # noqa: E731
        s, R, t = similarity_align(pad(ortho), pad(lm))
        return float(np.linalg.norm(s * pad(ortho) @ R.T + t - pad(lm), axis=1).mean())

    short, pose_short = landmarks(20.0)
    long_, pose_long = landmarks(400.0)
    assert pose_short[0] == pytest.approx(20.0 / 36.0 * 128) and -pose_short[6] < -pose_long[6]
    r_short, r_long = residual(short), residual(long_)
    assert r_short > 1.0 and r_short > 5 * r_long, (r_short, r_long)


def test_perspective_pose_frames_the_face():
    lm = torch.tensor(np.random.default_rng(0).uniform(-60, 60, (68, 3)), dtype=torch.float32)
    pose = perspective_pose(lm, [0.0, 0.0, 0.0], 200, 0.5, 50.0, np.array([10.0, 0.0]))
    xy = project(lm[None], pose, Camera(200, 200, "perspective"))[0, :, :2]
    assert float(xy[:, 0].mean()) == pytest.approx(99.5 + 10.0, abs=2.0)
    assert 0.35 * 200 < float((xy.max(0).values - xy.min(0).values).max()) < 0.65 * 200


def test_scalp_and_hair(face_model):
    verts = face_model.mean
    scalp = scalp_faces(face_model, verts, 30.0)
    centres = verts[face_model.faces].mean(1)
    top = int(centres[:, 1].argmax())
    assert scalp[top] and not scalp[(face_model.region[face_model.faces] == 0).any(1)].any()
    mouth_y = float(verts[face_model.landmarks68[48:68], 1].mean())
    assert (centres[scalp, 1] > mouth_y).all() and 0.1 < scalp.float().mean() < 0.6  # down to the nape
    assert scalp_faces(face_model, verts, 45.0).sum() < scalp.sum()  # a higher hairline, less hair
    a, b = hair_tile(np.random.default_rng(1), 32), hair_tile(np.random.default_rng(1), 32)
    np.testing.assert_array_equal(a, b)
    assert a.std(axis=1).mean() > a.std(axis=0).mean()  # strands: varies across more than along


def test_random_lights():
    grey = random_lights(np.random.default_rng(0), (0.5, 0.5), (0.5, 0.5), 0.0, False)
    assert len(grey.suns) == 1 and grey.suns[0][1] == (0.5, 0.5, 0.5) and grey.ambient == (0.5, 0.5, 0.5)
    torch.testing.assert_close(grey.sh(), sh_directional(torch.tensor([grey.suns[0][0]]), 0.5, 0.5))
    tinted = random_lights(np.random.default_rng(0), (0.5, 0.5), (0.5, 0.5), 0.3, True)
    assert len(tinted.suns) == 2 and not torch.allclose(tinted.sh().view(3, 9)[0], tinted.sh().view(3, 9)[2])
    assert 0.2 * 0.5 * 0.7 <= tinted.suns[1][1][1] <= 0.7 * 0.5  # the second light's green: 20–70 % of the key


def test_cycles_render_matches_the_rasteriser_geometry(face_model):
    """The independent Cycles path (bpy) covers the same pixels as backend.render for the same
    head, camera and pose (perspective and orthographic), deterministic for its seed."""
    pytest.importorskip("bpy")
    from evaluation.synthetic import render_face
    from evaluation.synthetic_cycles import render_cycles
    from evaluation.synthetic_scene import Lights

    lights = Lights((0.6, 0.6, 0.6), (((0.3, 0.2, 1.0), (0.4, 0.4, 0.4)),))
    texture = np.full((16, 32, 3), 0.6, np.float32)
    verts = face_model.mean[None]
    for projection in ("perspective", "orthographic"):
        st = SyntheticSettings(projection=projection, focal_35mm=(50.0, 50.0), **dict(SMALL, size=64))
        pose = make_faces(face_model, 1, seed=3, settings=st)[0].pose
        args = (verts[0].numpy(), face_model.faces.numpy(), face_model.uv.numpy(), face_model.faces_uv.numpy(),
                texture, 2.0, pose, projection, 64, lights)
        image, mask = render_cycles(*args, samples=4)
        _, ours = render_face(face_model, verts, torch.from_numpy(pose)[None], lights.sh(), texture, 64, (0, 0, 0),
                              projection=projection)
        iou = (mask & ours).sum() / (mask | ours).sum()
        assert iou > 0.95 and image.dtype == np.uint8 and image[mask].mean() > 40, (projection, iou)
        again, _ = render_cycles(*args, samples=4)
        np.testing.assert_array_equal(image, again)

"""The gaze (backend.gaze): irises found in renders of the model with turned eyeballs give back the
yaw and pitch they were turned by; the gaze in the exports (params.json, head.npz, head.obj,
head.glb's eyeball nodes)."""
from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
import torch

from backend.camera import Camera, project
from backend.gaze import (PITCH_LIMIT, VERGENCE_LIMIT, YAW_LIMIT, combine_eyes, estimate_gaze, eye_weights,
                          locate_irises)
from backend.head import Head
from backend.head_parts import (EYEBALLS, eye_frame, eye_pivots, eye_rotation, gaze_quaternion,
                                part_meshes, preview_parts, swatch_tile)
from tests.conftest import head_with_parts


def _head(model, gaze, lid_margin=None, look_up: float = 0.0) -> Head:
    """The mean face with its parts, eyeballs turned by ``gaze`` (2,2) radians or None, lids lifted
    by ``eyeLookUp_L/R`` = ``look_up`` (ICT's shapes move the lids, not the eyeballs)."""
    ident, exp = torch.zeros(1, model.n_id), torch.zeros(1, model.n_exp)
    for name in ("eyeLookUp_L", "eyeLookUp_R"):
        exp[0, list(model.exp_names).index(name)] = look_up
    return head_with_parts(model, ident, exp, gaze=gaze, lid_margin=lid_margin)


def _render(model, head: Head, head_yaw_deg: float, size: int = 256):
    """The head (skin one flat colour, parts their flat colours, eyeballs as they look) rendered
    orthographically, ambient light. Returns (image (S,S,3) uint8, pose (7,), landmarks (68,2) px)."""
    from backend.lighting import sh_ambient
    from evaluation.synthetic import render_face

    tiles = model.uv_tiles
    verts = torch.from_numpy(head.vertices)[None]
    pv, pf, puv, pfuv = preview_parts(head, tiles)
    V = verts.shape[1]
    mesh = (torch.cat([verts, torch.from_numpy(pv)[None]], 1), torch.cat([model.faces, torch.from_numpy(pf) + V]),
            torch.cat([model.uv, torch.from_numpy(puv)]), torch.cat([model.faces_uv, torch.from_numpy(pfuv) + model.uv.shape[0]]))
    A = 64
    texture = np.concatenate([np.full((A, A * tiles, 3), (0.75, 0.55, 0.45), np.float32), swatch_tile(head, A)], 1)
    lm = verts[0, model.landmarks68]
    f = 0.6 * size / float((lm.max(0).values - lm.min(0).values)[:2].max())
    pose = torch.tensor([[f, 0.05, math.radians(head_yaw_deg), 0.0, 0.0, 0.0, 0.0]])
    camera = Camera(size, size)
    centre = project(lm[None], pose, camera)[0, :, :2].mean(0)
    pose[0, 4], pose[0, 5] = -(float(centre[0]) - (size - 1) / 2), float(centre[1]) - (size - 1) / 2
    image, _ = render_face(model, verts, pose, sh_ambient(1.0), texture, size, (0.5, 0.5, 0.5), mesh, "orthographic",
                           tiles + 1)
    return image, pose[0].numpy(), project(lm[None], pose, camera)[0, :, :2].numpy()


def _frames(head: Head) -> dict:
    V = len(head.neutral)
    return {name: eye_frame(head.parts_neutral[np.unique(head.parts_faces[a:b]) - V])
            for name, (a, b) in zip(head.part_names, head.part_face_range) if name in EYEBALLS}


@pytest.mark.parametrize("head_yaw, gaze_deg, look_up", [
    (0.0, (0.0, 0.0), 0.0), (0.0, (15.0, 0.0), 0.0), (0.0, (-20.0, 0.0), 0.0), (0.0, (0.0, 10.0), 0.0),
    (0.0, (0.0, 15.0), 0.0), (0.0, (20.0, 8.0), 0.0), (30.0, (15.0, 0.0), 0.0), (30.0, (-20.0, 0.0), 0.0),
    (0.0, (0.0, -10.0), 0.5), (0.0, (10.0, -15.0), 0.7),
])
def test_gaze_from_renders_with_turned_eyeballs(ict_parts, head_yaw, gaze_deg, look_up):
    """Renders of the mean face with both eyeballs turned by a known gaze (frontal and a 30° head
    turn; a look up with the lids lifted by eyeLookUp, as real lids follow the eye), its true
    landmarks as the detector's and the fit's: yaw back within 3.5°, pitch within 3°."""
    gaze = np.radians(np.array([gaze_deg, gaze_deg], np.float32))
    head = _head(ict_parts, gaze, look_up=look_up)
    image, pose, lm = _render(ict_parts, head, head_yaw)
    found = estimate_gaze(image, lm, lm, pose, Camera(256, 256), _frames(head))
    assert found.seen.all()
    got = found.angles
    err = np.degrees(np.abs(got - gaze))
    assert err[:, 0].max() < 3.5, np.degrees(got)
    assert err[:, 1].max() < 3.0, np.degrees(got)


def test_locate_irises_finds_a_dark_disc():
    """A dark disc on a light ellipse: found within half a pixel, partly under the lid too."""
    img = np.full((100, 160, 3), 200, np.uint8)
    ys, xs = np.mgrid[0:100, 0:160]
    contours = []
    for cx, ix in ((45.0, 52.0), (115.0, 110.0)):
        img[((xs - cx) / 25.0) ** 2 + ((ys - 50.0) / 9.0) ** 2 < 1.0] = 240
        img[np.hypot(xs - ix, ys - 53.0) < 8.0] = 60
        a = np.linspace(np.pi, -np.pi, 6, endpoint=False)
        contours.append(np.stack([cx + 25.0 * np.cos(a), 50.0 + 9.0 * np.sin(a)], 1))
    centres, opening = locate_irises(img, np.stack(contours), np.array([8.0, 8.0]))
    np.testing.assert_allclose(centres[:, 0], [52.0, 110.0], atol=0.5)
    assert np.all(np.abs(centres[:, 1] - 50.0) < 3.5)  # the lids hide its top: between the contour's middle and 53
    assert np.all(opening > 0.5)


def test_combine_eyes_limits_and_shut_eyes():
    both = np.array([1.0, 1.0])
    out = combine_eyes(np.radians([[10.0, 0.0], [30.0, 2.0]]), both)
    np.testing.assert_allclose(out[:, 0], np.radians([15.0, 25.0]), atol=1e-9)  # vergence capped at 5° each
    np.testing.assert_allclose(out[:, 1], np.radians([1.0, 1.0]), atol=1e-9)  # one pitch
    out = combine_eyes(np.radians([[10.0, 0.0], [80.0, 60.0]]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(out, np.radians([[10.0, 0.0], [10.0, 0.0]]))  # a shut eye follows the other
    out = combine_eyes(np.radians([[80.0, -60.0], [80.0, -60.0]]), both)
    np.testing.assert_allclose(out, [[YAW_LIMIT, -PITCH_LIMIT]] * 2)
    assert np.all(combine_eyes(np.ones((2, 2)), np.zeros(2)) == 0)
    half = combine_eyes(np.radians([[20.0, 4.0], [20.0, 4.0]]), np.array([0.5, 0.25]))
    np.testing.assert_allclose(half, np.radians([[10.0, 2.0]] * 2))  # narrow eyes: towards looking ahead
    np.testing.assert_allclose(eye_weights(np.array([0.1, 0.4, 0.9, 0.9]), np.array([5.0, 5.0, 5.0, 2.0])),
                               [0.0, 0.5, 1.0, 0.0])
    assert VERGENCE_LIMIT < YAW_LIMIT


def test_best_view_is_the_most_open_first_on_ties():
    from backend.gaze import GazeEstimate, best_view

    def est(w):
        return GazeEstimate(np.zeros((2, 2), np.float32), np.zeros((2, 2)), np.ones(2), np.asarray(w, float))

    assert best_view([est([0.0, 0.0]), est([1.0, 0.5]), est([0.9, 0.9])]) == 2
    assert best_view([est([1.0, 1.0]), est([1.0, 1.0])]) == 0
    assert best_view([est([0.0, 0.0])]) == 0
    assert not est([0.0, 0.0]).seen.any() and est([0.2, 0.0]).seen.tolist() == [True, False]


def test_gaze_quaternion_is_the_eye_rotation():
    for yaw, pitch in ((0.3, -0.2), (-0.5, 0.4)):
        x, y, z, w = gaze_quaternion(yaw, pitch)
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        np.testing.assert_allclose(R, eye_rotation(yaw, pitch), atol=1e-12)
    np.testing.assert_allclose(eye_rotation(0.4, 0.0) @ [0, 0, 1], [math.sin(0.4), 0, math.cos(0.4)])  # to +x
    assert (eye_rotation(0.0, 0.3) @ [0, 0, 1])[1] < 0  # pitch > 0: down


def test_eye_frame_is_the_sclera_sphere(ict_parts):
    head = _head(ict_parts, None)
    frame = _frames(head)["eyeball_left"]
    V = len(head.neutral)
    f0, f1 = head.part_face_range[head.part_names.index("eyeball_left")]
    pts = head.parts_neutral[np.unique(head.parts_faces[f0:f1]) - V]
    r = np.linalg.norm(pts - frame.centre, axis=1)
    assert np.median(np.abs(r - frame.radius)) < 0.5  # a sphere through the shell
    assert 5.0 < frame.limbus < frame.radius and frame.axis[2] > 0.99
    assert frame.centre[2] < pts.mean(0)[2] - 2.0  # behind the vertices' mean (the dense cornea)


def _glb_json(path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    n = struct.unpack("<I", data[12:16])[0]
    doc = json.loads(data[20 : 20 + n])
    return doc, data[20 + n + 8 :]


def _accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"VEC3": 3, "VEC2": 2, "SCALAR": 1}[acc["type"]]
    return np.frombuffer(binary, np.float32, acc["count"] * width, view.get("byteOffset", 0)).reshape(acc["count"], width)


def test_gaze_in_the_exports(ict_parts, tmp_path):
    """params.json holds the gaze; head.npz keeps it; head.obj's eyeballs are turned; head.glb's
    eyeball nodes sit at the eyeball's centre, turned by the gaze's quaternion, and give the
    turned eyeball; the iris moves to +x for a positive yaw and the eyeball's centre stays."""
    from backend.export import load_head, params_dict, save_head, write_glb, write_obj

    gaze = np.radians(np.array([[20.0, 10.0], [16.0, 10.0]], np.float32))
    head = _head(ict_parts, gaze)
    ahead = _head(ict_parts, None)
    doc = params_dict(head)
    assert doc["gaze"]["eyeball_left"]["yaw"] == pytest.approx(float(gaze[0, 0]))
    assert doc["gaze"]["eyeball_right"]["pitch"] == pytest.approx(float(gaze[1, 1]))
    assert params_dict(ahead)["gaze"] is None
    json.dumps(doc, allow_nan=False)
    np.testing.assert_array_equal(load_head(save_head(head, tmp_path / "head.npz")).gaze, gaze)

    turned = {p.name: p for p in part_meshes(head)}
    still = {p.name: p for p in part_meshes(ahead)}
    pivots = eye_pivots(head)
    for e, name in enumerate(EYEBALLS):
        iris = ahead.part_material_names.index("iris")
        ring = np.unique(still[name].faces[still[name].material == iris])
        shift = turned[name].vertices[ring].mean(0) - still[name].vertices[ring].mean(0)
        assert shift[0] > 3.0 and shift[1] < -1.5  # the iris went to +x and down (mm)
        c = pivots[name][0]
        np.testing.assert_allclose(np.linalg.norm(turned[name].vertices - c, axis=1),
                                   np.linalg.norm(still[name].vertices - c, axis=1), atol=1e-3)  # about the centre
        np.testing.assert_allclose(turned[name].vertices.mean(0), still[name].vertices.mean(0), atol=4.0)

    write_obj(head, tmp_path / "head.obj")
    lines = (tmp_path / "head.obj").read_text().splitlines()
    v = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    V = len(head.vertices)
    for name in EYEBALLS:
        np.testing.assert_allclose(v[V + turned[name].source - V], turned[name].vertices, atol=1e-4)

    write_glb(head, tmp_path / "head.glb")
    gltf, binary = _glb_json(tmp_path / "head.glb")
    nodes = {n["name"]: n for n in gltf["nodes"]}
    for e, name in enumerate(EYEBALLS):
        node = nodes[name]
        np.testing.assert_allclose(node["rotation"], gaze_quaternion(*gaze[e].astype(np.float64)), atol=1e-7)
        np.testing.assert_allclose(np.array(node["translation"]) * 1000.0, pivots[name][0], atol=1e-3)
        mesh = gltf["meshes"][node["mesh"]]
        local = _accessor(gltf, binary, mesh["primitives"][0]["attributes"]["POSITION"]) * 1000.0
        world = local @ eye_rotation(*gaze[e].astype(np.float64)).T + pivots[name][0]
        # the glb's vertices are split at UV seams: compare as sets (every vertex within 1e-3 mm of a turned one)
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(turned[name].neutral).query(world)
        assert dist.max() < 1e-3
    assert "rotation" not in nodes["teeth"]

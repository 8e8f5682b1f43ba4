"""Mouth parts that stay behind the skin (backend.mouth_clearance): analytic checks on a sheet of
skin, and on the ICT model with parts: a mouth mix seen on a real photo's fit (the jaw open
behind closed lips, the chin raised) shows the socket through the chin of a random identity;
the head's corrective hides it and keeps the shape keys consistent."""
from __future__ import annotations

import numpy as np
import torch

from backend.mouth_clearance import MOUTH_PARTS, pull_behind_skin, skin_behind
from tests.conftest import head_with_parts

# a 40 mm square of skin in the plane z = 0, counter-clockwise seen from +z (its outside)
SHEET = np.array([[-20.0, -20.0, 0.0], [20.0, -20.0, 0.0], [20.0, 20.0, 0.0], [-20.0, 20.0, 0.0]])
FRONT_FACING = np.array([[0, 1, 2], [0, 2, 3]])
BACK_FACING = FRONT_FACING[:, ::-1]


def test_skin_behind_measures_points_in_front_of_the_skin_only():
    points = np.array([[0.0, 0.0, 2.0], [5.0, 5.0, -2.0], [0.0, 0.0, 25.0], [30.0, 0.0, 2.0]])
    # in front by 2 mm; behind; in front but beyond the 20 mm reach; beside the sheet
    np.testing.assert_allclose(skin_behind(points, SHEET, FRONT_FACING, reach=20.0), [2.0, 0.0, 0.0, 0.0])
    # skin seen from inside (the back of the head from the mouth): nothing is in front of it
    np.testing.assert_allclose(skin_behind(points, SHEET, BACK_FACING, reach=20.0), 0.0)


def test_pull_behind_skin_moves_straight_back_to_the_margin():
    points = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, -0.5], [-4.0, 0.0, 0.5]])
    out = pull_behind_skin(points, SHEET, FRONT_FACING, margin=1.0)
    np.testing.assert_allclose(out, [[1.0, 2.0, -1.0], [1.0, 2.0, -0.5], [-4.0, 0.0, -1.0]], atol=1e-12)
    np.testing.assert_allclose(pull_behind_skin(points, SHEET, BACK_FACING, margin=1.0), points)
    assert points[0, 2] == 3.0  # the input is not modified


def test_pull_behind_skin_clears_stacked_layers():
    """Folded skin: two front-facing layers, at z = 0 and z = −3; a point in front of both ends
    behind both."""
    two = np.concatenate([SHEET, SHEET - [0.0, 0.0, 3.0]])
    faces = np.concatenate([FRONT_FACING, FRONT_FACING + 4])
    out = pull_behind_skin(np.array([[0.0, 0.0, 1.0]]), two, faces, margin=0.5)
    np.testing.assert_allclose(out, [[0.0, 0.0, -3.5]], atol=1e-12)


# a fit's mouth on a real photo (closed lips, slight smile): its identity put the socket 2–4 mm
# through the chin; random identity seed 2 does the same with it
MIX = {"jawOpen": 0.46, "mouthClose": 0.32, "mouthShrugLower": 0.59, "mouthLeft": 0.47, "mouthRight": 0.52,
       "mouthFrown_L": 0.65, "mouthFrown_R": 0.82, "mouthPress_L": 0.42, "mouthPucker": 0.26,
       "mouthStretch_R": 0.64, "mouthShrugUpper": 0.39}


def _head(model, mouth_margin: float | None):
    ident = torch.randn(1, model.n_id, generator=torch.Generator().manual_seed(2))
    exp = torch.zeros(1, model.n_exp)
    for name, w in MIX.items():
        exp[0, list(model.exp_names).index(name)] = w
    return head_with_parts(model, ident, exp, lid_margin=None, mouth_margin=mouth_margin)


def _in_front(head) -> dict[str, float]:
    from backend.head_parts import part_meshes

    return {p.name: float(skin_behind(p.vertices[p.source >= len(head.vertices)], head.vertices, head.faces, 20.0).max())
            for p in part_meshes(head) if p.name in MOUTH_PARTS}


def test_mouth_parts_stay_behind_the_skin(ict_parts):
    raw, cleared = _head(ict_parts, None), _head(ict_parts, 1.0)
    before, after = _in_front(raw), _in_front(cleared)
    assert before["mouth_socket"] > 3.0  # the defect: the socket shows through the chin
    assert max(after.values()) == 0.0, after
    # only the few vertices in front moved (straight back, ≤ depth + margin), the skin not at all
    moved = np.linalg.norm(cleared.parts_vertices - raw.parts_vertices, axis=1)
    assert 0 < (moved > 0).sum() < 200 and moved.max() < before["mouth_socket"] + 1.0 + 1e-4
    np.testing.assert_array_equal(cleared.vertices, raw.vertices)
    # rest shape + shape keys at the fitted weights give the corrected parts (what Blender and glTF build)
    posed = cleared.parts_neutral + np.einsum("k,kvc->vc", cleared.exp_coeffs, cleared.parts_exp_basis)
    np.testing.assert_allclose(posed, cleared.parts_vertices, atol=1e-3)

"""The eyeballs' shading under the lids (backend.eye_shading) and the previews that paint it: the
horizon-based visibility against analytic cases, the sky brighter above, the lashes, and a frontal
preview of the mean face whose sclera darkens under the upper lid."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.eye_shading import SKY_ABOVE, eye_shading, fine_eyeball, lid_visibility


def _sheet(hole_y: tuple[float, float], height: float = 2.0, half: float = 30.0, n: int = 121):
    """A skin sheet at z = ``height`` over |x|, |y| ≤ ``half`` mm with a slot cut out between
    y = hole_y[0] and hole_y[1] (all x): vertices (V,3), faces (F,3) counter-clockwise from +z."""
    t = np.linspace(-half, half, n)
    gx, gy = np.meshgrid(t, t)
    verts = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, height)], 1)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1))
    a = (j * n + i).ravel()
    quads = np.stack([a, a + 1, a + n + 1, a + n], 1)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    centre_y = verts[faces, 1].mean(1)
    keep = (centre_y < hole_y[0]) | (centre_y > hole_y[1])
    return verts, faces[keep]


def test_open_ground_sees_the_whole_sky():
    verts, faces = _sheet((-15.0, 15.0), height=0.0)
    vis, covered = lid_visibility(np.array([[0.0, 0.0, 0.0], [0.0, 3.0, -0.5]]), verts, faces, lashes=False)
    np.testing.assert_allclose(vis, 1.0)  # the slot's walls are 12 mm away and no higher than the points
    assert not covered.any()


def test_a_trench_shades_as_the_analytic_integral():
    """The bottom of a trench (walls 2 mm high, 3 mm to each side) sees ∫ w(φ)/(1 + tan²θ(φ)) dφ
    of the sky, tanθ = 2·|sinφ|/3 where the wall lies within reach; the sky's weight
    1 + SKY_ABOVE·sinφ cancels between the two symmetric walls."""
    verts, faces = _sheet((-3.0, 3.0), height=2.0)
    reach = 20.0
    vis, covered = lid_visibility(np.zeros((1, 3)), verts, faces, lashes=False, reach=reach, step=0.05,
                                  directions=180, samples=400)
    phi = np.linspace(0.0, 2.0 * np.pi, 100000, endpoint=False)
    s = np.abs(np.sin(phi))
    tan = np.where(3.0 / np.maximum(s, 1e-12) <= reach, 2.0 * s / 3.0, 0.0)
    expected = np.mean((1.0 + SKY_ABOVE * np.sin(phi)) / (1.0 + tan**2))
    assert abs(vis[0] - expected) < 0.01, (vis[0], expected)  # 0.838
    assert not covered[0]
    under, covered = lid_visibility(np.array([[0.0, 5.0, 0.0]]), verts, faces, lashes=False)
    assert covered[0] and under[0] < 0.5  # under the skin, 2 mm from the trench's edge


def test_upper_lid_and_lashes_shade_more_than_the_lower_lid():
    """In a slot 8 mm high behind a 2 mm thick lid, points 1 mm from its upper and lower edges and
    in its middle: the sky is brighter above, so the upper lid takes more of it (0.58 against
    0.89); the lashes, growing forward and up from the upper edge, shade the middle (0.91 → 0.82)
    and never lighten anything."""
    verts, faces = _sheet((-4.0, 4.0), height=2.0)
    pts = np.array([[0.0, 3.0, 0.0], [0.0, -3.0, 0.0], [0.0, 0.0, 0.0]])
    bare, _ = lid_visibility(pts, verts, faces, lashes=False)
    lashes, _ = lid_visibility(pts, verts, faces)
    assert bare[0] < bare[1] - 0.2
    assert lashes[2] < bare[2] - 0.05 and np.all(lashes <= bare)
    assert lashes[2] > lashes[0]


def test_shares_keep_the_reference_at_full_colour():
    """eye_shading: the chosen quantile of each material's visible vertices keeps the full colour,
    darker ones scale down, nothing exceeds 1; a fine eyeball keeps its materials and radius."""
    verts, faces = _sheet((-4.0, 4.0), height=2.0)
    t = np.linspace(-np.pi / 2, np.pi / 2, 13)
    ball = np.stack(np.meshgrid(t, t), -1).reshape(-1, 2)
    pts = np.stack([10.0 * np.sin(ball[:, 0]), 10.0 * np.sin(ball[:, 1]) * np.cos(ball[:, 0]),
                    10.0 * np.cos(ball[:, 0]) * np.cos(ball[:, 1]) - 9.0], 1)  # a cap of a 10 mm ball, apex at z = 1
    n = len(t)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1))
    a = (j * n + i).ravel()
    tri = np.concatenate([np.stack([a, a + n + 1, a + 1], 1), np.stack([a, a + n, a + n + 1], 1)])
    if np.cross(pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]])[:, 2].mean() < 0:
        tri = tri[:, ::-1]
    material = np.where(np.linalg.norm(pts[tri].mean(1)[:, :2], axis=1) < 3.0, 1, 0)
    fv, ff, fm = fine_eyeball(pts, tri, material, levels=1)
    assert len(ff) == 4 * len(tri) and np.array_equal(np.bincount(fm), 4 * np.bincount(material))
    share = eye_shading([(fv, ff, fm)], verts, faces, {0: 0.7, 1: 0.5})[0]
    assert share.shape == ff.shape and share.max() <= 1.0
    for m in (0, 1):
        full = (share[fm == m] == 1.0).mean()
        assert 0.05 < full < 0.7, (m, full)
    assert share.min() < 0.5


def test_frontal_preview_darkens_the_sclera_under_the_upper_lid(ict_parts):
    """The mean face's preview, frontal, in ambient light: the sclera's albedo as rendered (the
    swatch's shade) in the top third of each eye's opening is below 0.8 of the bottom third's
    (0.72; flat sclera, as before: 1.0); some of it keeps the full colour, and none of the exports' colours change."""
    from tests.conftest import head_with_parts
    from backend.camera import Camera
    from backend.head_parts import mtl_parts_text
    from backend.lighting import sh_ambient
    from backend.preview_render import head_mesh, preview_texture
    from backend.render import RenderSettings, render

    sclera = (0.9, 0.9, 0.9)
    head = head_with_parts(ict_parts, torch.zeros(1, ict_parts.n_id), torch.zeros(1, ict_parts.n_exp),
                           colors={"sclera": sclera, "sclera_seen": (0.6, 0.6, 0.6), "iris": (0.2, 0.3, 0.7)})
    assert "Kd 0.9000 0.9000 0.9000" in mtl_parts_text(head)  # the exports keep the albedo-like colour
    head.albedo = np.broadcast_to(np.array([0.8, 0.5, 0.4], np.float32), (64, 64 * head.uv_tiles, 3)).copy()
    verts, faces, uv, faces_uv = head_mesh(head, detailed=False)
    tex, u_max = preview_texture(head)
    size = 512
    eyes = verts[0, len(head.vertices):]
    lm = torch.from_numpy(head.vertices[ict_parts.landmarks68[36:48]])
    f = 0.8 * size / float(lm[:, 0].max() - lm[:, 0].min())
    centre = lm.mean(0)
    pose = torch.tensor([[f, 0.0, 0.0, 0.0, -f * float(centre[0]), -f * float(centre[1]), 0.0]])
    with torch.no_grad():
        out = render(verts, faces, pose, Camera(size, size), sh_ambient(1.0), texture=tex[None], uv=uv,
                     faces_uv=faces_uv, settings=RenderSettings(u_range=(0.0, u_max)))
    albedo = out.albedo[0].numpy()
    assert len(eyes) > 0
    grey = (np.ptp(albedo, axis=-1) < 0.01) & (albedo.max(-1) > 0.05) & out.mask[0].numpy()  # the sclera (pupil: < 0.05)
    shade = albedo[..., 0] / 0.6
    ratios = []
    for half in (slice(0, size // 2), slice(size // 2, size)):  # each eye's side of the image
        rows = np.flatnonzero(grey[:, half].any(1))
        top, bottom = rows.min(), rows.max()
        third = (bottom - top) / 3.0
        upper = shade[:, half][(np.arange(size)[:, None] < top + third) & grey[:, half]]
        lower = shade[:, half][(np.arange(size)[:, None] > bottom - third) & grey[:, half]]
        ratios.append(upper.mean() / lower.mean())
        assert shade[:, half][grey[:, half]].max() > 0.97
    assert max(ratios) < 0.8, ratios  # 0.72 for both eyes; 1.0 with flat colours


def test_preview_parts_shades_a_head_once(ict_parts):
    """The shaded preview parts are kept for the last head: the same head's second call returns the
    same arrays; a head with another gaze is shaded anew (and like an uncached call)."""
    from backend.head_parts import _preview_parts, preview_parts
    from tests.conftest import head_with_parts

    ident, exp = torch.zeros(1, ict_parts.n_id), torch.zeros(1, ict_parts.n_exp)
    head = head_with_parts(ict_parts, ident, exp)
    first = preview_parts(head, ict_parts.uv_tiles, shade_eyes=True)
    assert all(a is b for a, b in zip(first, preview_parts(head, ict_parts.uv_tiles, shade_eyes=True)))
    turned = head_with_parts(ict_parts, ident, exp, gaze=np.radians([[20.0, 0.0], [20.0, 0.0]]))
    other = preview_parts(turned, ict_parts.uv_tiles, shade_eyes=True)
    assert not np.array_equal(other[0], first[0])
    for a, b in zip(other, _preview_parts(turned, ict_parts.uv_tiles, True)):
        np.testing.assert_array_equal(a, b)

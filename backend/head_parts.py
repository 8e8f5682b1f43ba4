"""A head's parts (eyes, eye and mouth sockets, gums, tongue, teeth, lashes) for the exporters,
previews and the Blender add-on. numpy only at import (the add-on imports it).

:func:`attach_parts` fills the ``parts_*`` fields of a :class:`~backend.head.Head` from a face
model with parts (:mod:`backend.facemodel.parts`): the same identity and expression
coefficients as the skin, each part with one flat-coloured material per region (the iris and
sclera colours from the photo: :mod:`backend.parts_texture`). :func:`part_meshes` cuts them into
self-contained meshes (one per part; a socket carries copies of the skin rim vertices it is
stitched to, with the same shape keys, so it closes onto the skin without a gap).

ICT's thin shading helpers (lacrimal fluid, eye blend, eye occlusion: transparent or dark
overlays in ICT's renders) and its eyelashes (alpha-textured cards) are left out: drawn opaque
they hide the eye or paint a black band over the lid (the previews shade the eyeballs under the
lids and lashes instead: :mod:`backend.eye_shading`). The eyeball keeps its outer shell,
painted sclera / iris / pupil (ICT's inner iris sphere, seen through a transparent cornea in
ICT's renders, is dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import array_digest, split_seams, vertex_normals_np

__all__ = [
    "EXPORTED_PARTS", "PART_MATERIALS", "PartMesh", "attach_parts", "kept_part_faces", "part_meshes", "has_parts",
    "obj_parts_section", "mtl_parts_text", "EYEBALLS", "EyeFrame", "eye_frame", "eye_rotation", "eye_pivots",
    "model_eyeballs", "gaze_quaternion", "IRIS_RADIUS_MM", "IRIS_RANGE_MM", "slide_iris", "first_skin_hit", "SkinDepths", "skin_depths",
]

EXPORTED_PARTS = (
    "mouth_socket", "eye_socket_left", "eye_socket_right", "gums_and_tongue", "teeth", "eyeball_left", "eyeball_right",
)
# material name → default colour (sRGB in [0,1], like the albedo map); the photo replaces
# sclera and iris (backend.parts_texture)
PART_MATERIALS = {
    "socket": (0.30, 0.07, 0.06),       # mouth interior and eye sockets: dark red
    "gums_tongue": (0.55, 0.20, 0.19),
    "teeth": (0.85, 0.82, 0.72),
    "sclera": (0.85, 0.82, 0.78),
    "iris": (0.33, 0.24, 0.16),
    "pupil": (0.02, 0.02, 0.02),
}
_PART_MATERIAL = {
    "mouth_socket": "socket", "eye_socket_left": "socket", "eye_socket_right": "socket",
    "gums_and_tongue": "gums_tongue", "teeth": "teeth",
}
IRIS_RADIUS_MM = 5.6   # the human iris is about 11–12 mm across (the iris/sclera material split)
IRIS_RANGE_MM = (5.0, 6.6)  # a measured iris radius is clamped to this (11–13 mm across, and a margin)
PUPIL_RADIUS_MM = 2.2  # a mid-size pupil
EYEBALLS = ("eyeball_left", "eyeball_right")  # the order of ``Head.gaze``'s rows


@dataclass(frozen=True)
class EyeFrame:
    """Where one eyeball sits and looks (model space, mm): ``centre`` (3,) the centre of the
    sphere through its sclera (the pivot of the gaze; ICT's shell is denser at the cornea, so the
    vertices' mean lies 4.5 mm in front of it), ``axis`` (3,) unit, from the centre through the
    cornea's apex (the gaze at rest), ``limbus`` the distance from the centre to the iris's rim
    circle along ``axis`` (the projected iris centre is ``centre + limbus·axis``), ``radius`` the
    sclera's radius."""

    centre: np.ndarray
    axis: np.ndarray
    limbus: float
    radius: float


def eye_frame(points: np.ndarray) -> EyeFrame:
    """The :class:`EyeFrame` of an eyeball's outer shell, points (n,3) mm looking along about +z:
    a least-squares sphere through the points outside the iris disc (the sclera)."""
    pts = np.asarray(points, np.float64)
    mean = pts.mean(0)
    apex = pts[np.argmax(pts[:, 2])]
    axis = (apex - mean) / max(np.linalg.norm(apex - mean), 1e-9)
    rel = pts - mean
    along = rel @ axis
    radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
    sclera = (along < 0) | (radial > IRIS_RADIUS_MM + 0.5)
    if sclera.sum() < 4:
        sclera[:] = True
    p = pts[sclera]
    sol = np.linalg.lstsq(np.c_[2.0 * p, np.ones(len(p))], (p * p).sum(1), rcond=None)[0]
    centre = sol[:3]
    radius = float(np.sqrt(max(sol[3] + centre @ centre, 1e-12)))
    axis = (apex - centre) / max(np.linalg.norm(apex - centre), 1e-9)
    rel = pts - centre
    along = rel @ axis
    radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
    rim = (along > 0) & (np.abs(radial - IRIS_RADIUS_MM) < 0.75)
    limbus = float(np.median(along[rim])) if rim.any() else float(np.sqrt(max(radius**2 - IRIS_RADIUS_MM**2, 0.0)))
    return EyeFrame(centre=centre, axis=axis, limbus=limbus, radius=radius)


def eye_rotation(yaw, pitch) -> np.ndarray:
    """(..., 3, 3) the gaze rotation ``Ry(yaw) @ Rx(pitch)`` (radians; yaw about +y turns the
    cornea to +x, the head's left; pitch about +x turns it down), applied about the eyeball's
    centre, as :func:`backend.fit.parts_term.turn_eyes`."""
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    zero, one = np.zeros_like(yaw), np.ones_like(yaw)
    ry = np.stack([np.stack([cy, zero, sy], -1), np.stack([zero, one, zero], -1), np.stack([-sy, zero, cy], -1)], -2)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, cp, -sp], -1), np.stack([zero, sp, cp], -1)], -2)
    return ry @ rx


@dataclass(frozen=True)
class PartMesh:
    """One part as a self-contained mesh (model space, mm). n vertices, f triangles.

    ``vertices`` (n,3) posed like ``Head.vertices``; ``neutral`` (n,3) identity only;
    ``exp_basis`` (K_exp,n,3) or None; ``faces`` (f,3) local, counter-clockwise from outside;
    ``uv`` (t,2) in [0,1]², ``faces_uv`` (f,3); ``material`` (f,) index into
    ``Head.part_material_names``; ``source`` (n,) vertex ids in ``concatenate(skin, parts)``.
    """

    name: str
    vertices: np.ndarray
    neutral: np.ndarray
    exp_basis: np.ndarray | None
    faces: np.ndarray
    uv: np.ndarray
    faces_uv: np.ndarray
    material: np.ndarray
    source: np.ndarray


def has_parts(head) -> bool:
    """True when ``head`` carries parts (``parts_faces`` set)."""
    return getattr(head, "parts_faces", None) is not None and len(head.parts_faces) > 0


def _fold_uv(uv: np.ndarray, faces_uv: np.ndarray, face_range: np.ndarray) -> np.ndarray:
    """ICT's parts UVs (u over several tiles) folded into [0,1]²: each part's tile shifted to 0."""
    out = uv.astype(np.float32).copy()
    for f0, f1 in face_range:
        ids = np.unique(faces_uv[f0:f1])
        if ids.size:
            out[ids, 0] -= np.floor(np.median(uv[ids, 0]))
    return np.clip(out, 0.0, 1.0)


def _eye_materials(mean: np.ndarray, faces: np.ndarray, eye_region: np.ndarray, offset: int) -> dict[str, np.ndarray]:
    """Face masks of one eyeball: "sclera", "iris", "pupil" on its outer shell and "hidden" for
    ICT's inner iris sphere (under the outer shell, textured through a transparent cornea in ICT's
    renders). mean (P,3) part vertices (neutral), faces (f,3) global ids of that eyeball,
    eye_region (f,) 0/2 outer shell, 1/3 inner sphere. The iris and pupil are discs around the
    axis from the eyeball's centre through the cornea's apex (:data:`IRIS_RADIUS_MM`, :data:`PUPIL_RADIUS_MM`;
    ICT's triangles put the iris's rim at about 5.8 mm: :func:`slide_iris` moves it)."""
    outer = eye_region % 2 == 0
    centres = mean[faces - offset].mean(1)  # (f,3)
    ball = mean[np.unique(faces[outer]) - offset]
    centre = ball.mean(0)
    apex = ball[np.argmax(ball[:, 2])]  # the cornea's apex: the eye looks along +z at rest
    axis = (apex - centre) / max(np.linalg.norm(apex - centre), 1e-9)
    rel = centres - centre
    along = rel @ axis
    radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
    front = outer & (along > 0)
    pupil = front & (radial < PUPIL_RADIUS_MM)
    iris = front & (radial < IRIS_RADIUS_MM) & ~pupil
    return {"sclera": outer & ~iris & ~pupil, "iris": iris, "pupil": pupil, "hidden": ~outer}


def kept_part_faces(info, V: int) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """The parts a head keeps (:data:`EXPORTED_PARTS`, the eyeball's inner iris sphere dropped),
    from a model's ``parts_info`` (:class:`~backend.facemodel.parts.FacePartsData`; skin of ``V``
    vertices): per part (name, faces (f,3) global ids into ``concatenate(skin, parts)``,
    faces_uv (f,3), material (f,) index into :data:`PART_MATERIALS`), sorted by material."""
    names = list(info.part_names)
    frange = np.asarray(info.part_face_range, np.int64)
    material_names = list(PART_MATERIALS)
    out = []
    for name in EXPORTED_PARTS:
        if name not in names:
            continue
        k = names.index(name)
        f = np.asarray(info.faces[frange[k, 0] : frange[k, 1]], np.int64)
        fuv = np.asarray(info.faces_uv[frange[k, 0] : frange[k, 1]], np.int64)
        if name.startswith("eyeball"):
            masks = _eye_materials(info.mean, f, info.eye_region_of_face[frange[k, 0] : frange[k, 1]], V)
            mat = np.zeros(len(f), np.int64)
            for m in ("sclera", "iris", "pupil"):
                mat[masks[m]] = material_names.index(m)
            f, fuv, mat = f[~masks["hidden"]], fuv[~masks["hidden"]], mat[~masks["hidden"]]
        else:
            mat = np.full(len(f), material_names.index(_PART_MATERIAL.get(name, "socket")), np.int64)
        order = np.argsort(mat, kind="stable")  # one run per material (one usemtl / primitive each)
        out.append((name, f[order], fuv[order], mat[order]))
    return out


def gaze_quaternion(yaw: float, pitch: float) -> np.ndarray:
    """(4,) the unit quaternion (x, y, z, w; glTF's order) of :func:`eye_rotation` (yaw, pitch)."""
    cy, sy, cp, sp = np.cos(yaw / 2), np.sin(yaw / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    return np.array([cy * sp, sy * cp, -sy * sp, cy * cp])  # q(yaw about y) · q(pitch about x)


def model_eyeballs(model, id_coeffs, exp_coeffs) -> dict[str, np.ndarray]:
    """{eyeball name: (n,3) mm} the kept outer shells of ``model``'s eyeballs for id (1,K_id) and
    exp (1,K_exp) tensors ({} for a model without parts)."""
    if not getattr(model, "has_parts", False):
        return {}
    import torch  # lazy, as in attach_parts

    with torch.no_grad():
        parts = model.parts_forward(id_coeffs, exp_coeffs)[0].float().cpu().numpy()
    V = model.n_verts
    return {name: parts[np.unique(f) - V] for name, f, _, _ in kept_part_faces(model.parts_info, V) if name in EYEBALLS}


def attach_parts(head, model, id_coeffs, exp_coeffs, colors: dict[str, tuple[float, float, float]] | None = None,
                 lid_margin: float | None = 0.3, gaze: np.ndarray | None = None,
                 mouth_margin: float | None = 1.0, iris_radius: float | None = None) -> None:
    """Fill ``head.parts_*`` from ``model`` (a :class:`~backend.facemodel.FaceModel` with parts)
    for the coefficients of ``head.vertices``: id (1,K_id), exp (1,K_exp) tensors. ``colors``
    overrides :data:`PART_MATERIALS` entries (sRGB [0,1]; ``head.part_material_colors``, the
    exports'); an entry ``"<material>_seen"`` gives that material as the photo shows it
    (``head.part_seen_colors``, the previews'; default: the material's colour). Does nothing for a
    model without parts.

    ``gaze`` (2,2) radians, (yaw, pitch) per eyeball in :data:`EYEBALLS` order (:func:`eye_rotation`),
    or None (looking ahead): stored as ``head.gaze``; the parts stay looking ahead and
    :func:`part_meshes` turns them (about :func:`eye_pivots`).

    ``lid_margin`` (mm; None: off): the skin around the eyes is pushed out of the eyeballs (turned
    by ``gaze``) by that margin at rest and at each expression's weight 1
    (:func:`backend.eye_clearance.clear_lids`): ``head.neutral``, ``head.exp_basis`` and
    ``head.vertices`` are replaced by corrected copies.

    ``mouth_margin`` (mm; None: off): mouth socket, gums, tongue and teeth vertices that the
    fitted expression leaves in front of the skin are moved back to that margin behind it
    (:func:`backend.mouth_clearance.pull_behind_skin`); the move is added to their rest shape too, so
    rest plus shape keys at the fitted weights gives the corrected parts.

    ``iris_radius`` (mm, clamped to :data:`IRIS_RANGE_MM`; None: ICT's own, about 5.8 mm): the
    eyeballs' vertices slide along their surface so that the iris's rim lies that far from the eye's
    axis (:func:`slide_iris`; the materials stay on their triangles, so the rim stays a smooth ring
    in the exports and previews); stored as ``head.iris_radius_mm``."""
    if not getattr(model, "has_parts", False):
        return
    import torch  # lazy: the add-on imports this module (through export) in Blender, without torch

    info = model.parts_info
    V = model.n_verts
    with torch.no_grad():
        posed = model.parts_forward(id_coeffs, exp_coeffs)[0].float().cpu().numpy()
        neutral = model.parts_forward(id_coeffs, None)[0].float().cpu().numpy()
        basis = model.parts_exp_basis.float().cpu().numpy()
    iris_radius = None if iris_radius is None else float(np.clip(iris_radius, *IRIS_RANGE_MM))
    kept = kept_part_faces(info, V)
    names, keep = list(info.part_names), [info.part_names.index(name) for name, *_ in kept]
    material_names = list(PART_MATERIALS)
    faces, faces_uv, material, ranges = [], [], [], []
    for _, f, fuv, mat in kept:
        start = sum(len(x) for x in faces)
        ranges.append((start, start + len(f)))
        faces.append(f)
        faces_uv.append(fuv)
        material.append(mat)
    all_faces = np.concatenate(faces)
    if iris_radius is not None:  # the iris's rim to the measured radius, the same move at rest and posed
        posed, neutral = posed.copy(), neutral.copy()
        for name, f, _, mat in kept:
            if name in EYEBALLS:
                rows, local = np.unique(f - V, return_inverse=True)
                move = slide_iris(neutral[rows], local.reshape(-1, 3), mat, iris_radius) - neutral[rows]
                neutral[rows] += move.astype(neutral.dtype)
                posed[rows] += move.astype(posed.dtype)
    gaze = None if gaze is None else np.asarray(gaze, np.float32).reshape(len(EYEBALLS), 2)
    if lid_margin is not None and head.exp_basis is not None:
        eye_faces = {names[k]: faces[i] for i, k in enumerate(keep) if names[k].startswith("eyeball")}
        turned_neutral, turned_basis = neutral, basis
        if gaze is not None and np.any(gaze != 0):  # clear the lids of the eyeballs as they look
            turned_neutral, turned_basis = neutral.copy(), basis.copy()
            for e, name in enumerate(EYEBALLS):
                if name in eye_faces:
                    rows = np.unique(eye_faces[name]) - V
                    centre, R = eye_frame(neutral[rows]).centre, eye_rotation(*gaze[e])
                    turned_neutral[rows] = (neutral[rows] - centre) @ R.T + centre
                    turned_basis[:, rows] = basis[:, rows] @ R.T
        _clear_lids(head, turned_neutral, turned_basis, list(eye_faces.values()), V, lid_margin)
    if mouth_margin is not None:
        posed, neutral = _clear_mouth(head, posed, neutral, {name: f for name, f, _, _ in kept}, V, mouth_margin)
    rows = np.unique(all_faces[all_faces >= V]) - V  # the part vertices the kept triangles use
    new_row = np.full(len(info.mean), -1, np.int64)
    new_row[rows] = np.arange(len(rows))
    all_faces = np.where(all_faces < V, all_faces, V + new_row[np.maximum(all_faces - V, 0)])
    faces_uv_all = np.concatenate(faces_uv)
    uv_ids, faces_uv_new = np.unique(faces_uv_all, return_inverse=True)
    uv = _fold_uv(info.uv, faces_uv_all, np.asarray(ranges))[uv_ids]
    palette = dict(PART_MATERIALS, **(colors or {}))
    head.parts_vertices = posed[rows].astype(np.float32)
    head.parts_neutral = neutral[rows].astype(np.float32)
    head.parts_exp_basis = basis[:, rows].astype(np.float32)
    head.parts_faces = all_faces.astype(np.int32)
    head.parts_uv = uv.astype(np.float32)
    head.parts_faces_uv = faces_uv_new.reshape(-1, 3).astype(np.int32)
    head.parts_material = np.concatenate(material).astype(np.int16)
    head.part_names = [names[k] for k in keep]
    head.part_face_range = np.asarray(ranges, np.int32)
    head.part_material_names = material_names
    head.part_material_colors = np.asarray([palette[m] for m in material_names], np.float32)
    head.part_seen_colors = np.asarray([palette.get(f"{m}_seen", palette[m]) for m in material_names], np.float32)
    head.gaze = gaze
    head.iris_radius_mm = iris_radius


def slide_iris(vertices: np.ndarray, faces: np.ndarray, material: np.ndarray, radius: float) -> np.ndarray:
    """(n,3) an eyeball shell's vertices (n,3) mm slid along its surface so that the rim of its iris
    (the edge between its "iris" and "sclera" triangles, faces (f,3) local, material (f,) into
    :data:`PART_MATERIALS`) lies ``radius`` mm from the eye's axis; the pupil's rim stays.

    The axis is the normal of the plane through the iris's rim, through the rim's centre. Around it,
    each vertex on the front half keeps its direction and moves from its distance ρ to the axis to
    g(ρ), g piecewise linear through the pupil's rim (fixed), the iris's rim (to ``radius``) and 3 mm
    beyond it (fixed, and everything farther); its height along the axis follows the surface's own
    profile (the mean height per 0.1 mm of ρ over the front half), then it is put back onto the
    shell's triangles along the axis: the cornea and the sclera keep their shape and only the
    painted disc grows or shrinks."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    names = list(PART_MATERIALS)

    def rim(a: str, b: str) -> np.ndarray:
        return np.intersect1d(f[material == names.index(a)], f[material == names.index(b)])

    limbus, pupil = rim("iris", "sclera"), rim("pupil", "iris")
    if len(limbus) < 3 or len(pupil) < 3:
        return v.copy()
    c = v[limbus].mean(0)
    n = np.linalg.svd(v[limbus] - c)[2][2]
    n = n if (v[np.unique(f[material == names.index("iris")])].mean(0) - v.mean(0)) @ n > 0 else -n  # to the front
    rel = v - c
    h = rel @ n
    planar = rel - h[:, None] * n
    rho = np.linalg.norm(planar, axis=1)
    rho_iris, rho_pupil = float(np.median(rho[limbus])), float(np.median(rho[pupil]))
    reach = rho_iris + 3.0
    front = (v - eye_frame(v).centre) @ n > 0
    moved = front & (rho < reach)
    knots = [0.0, rho_pupil, rho_iris, reach]
    new_rho = np.interp(rho, knots, [0.0, rho_pupil, float(np.clip(radius, rho_pupil + 1.0, reach - 1.0)), reach])
    bins = np.floor(rho[front] / 0.1).astype(np.int64)  # the surface's profile h(ρ) over the front half
    count = np.bincount(bins)
    keys = np.flatnonzero(count)
    prof_rho = np.bincount(bins, rho[front])[keys] / count[keys]
    prof_h = np.bincount(bins, h[front])[keys] / count[keys]
    lift = np.interp(new_rho, prof_rho, prof_h) - np.interp(rho, prof_rho, prof_h)
    unit = planar / np.maximum(rho, 1e-12)[:, None]
    out = v.copy()
    out[moved] = c + (h[moved] + lift[moved])[:, None] * n + new_rho[moved, None] * unit[moved]
    # onto the shell itself (its triangles' chords, within 0.2 mm of the profile): along the axis
    t, _ = _first_hits(out[moved] + 0.5 * n, np.tile(-n, (int(moved.sum()), 1)), v, f, 1.0)
    ok = np.isfinite(t)
    out[np.flatnonzero(moved)[ok]] += (0.5 - t[ok])[:, None] * n
    return out


def _clear_lids(head, parts_neutral: np.ndarray, parts_basis: np.ndarray, eyeball_faces: list[np.ndarray], V: int,
                margin: float) -> None:
    """Replace ``head.neutral``, ``head.exp_basis`` and ``head.vertices`` by the lid-cleared skin
    (:func:`backend.eye_clearance.clear_lids`). eyeball_faces: each eyeball's kept (outer shell)
    triangles, global ids ≥ V."""
    from .eye_clearance import EyeShell, clear_lids

    shells = []
    for f in eyeball_faces:
        ids, local = np.unique(np.asarray(f, np.int64) - V, return_inverse=True)
        shells.append(EyeShell(rows=ids, faces=local.reshape(-1, 3)))
    old_neutral = np.asarray(head.neutral, np.float32)
    old_basis = np.asarray(head.exp_basis, np.float32)
    closing = tuple(k for k, n in enumerate(head.exp_names[: len(old_basis)]) if "blink" in str(n).lower())
    cleared = clear_lids(old_neutral, old_basis, parts_neutral, parts_basis, shells, np.asarray(head.faces), closing, margin)
    x = np.asarray(head.exp_coeffs, np.float32).reshape(-1)[: len(old_basis)]
    change = (cleared.neutral - old_neutral) + np.einsum("k,kvc->vc", x, cleared.exp_basis[: len(x)] - old_basis[: len(x)])
    head.vertices = (np.asarray(head.vertices, np.float32) + change).astype(np.float32)
    head.neutral = cleared.neutral
    head.exp_basis = cleared.exp_basis


def _clear_mouth(head, posed: np.ndarray, neutral: np.ndarray, part_faces: dict[str, np.ndarray], V: int,
                 margin: float) -> tuple[np.ndarray, np.ndarray]:
    """(posed, neutral) part vertices (P,3) with the mouth parts' own vertices that show in front
    of the posed skin ``head.vertices`` moved behind it (:func:`backend.mouth_clearance.pull_behind_skin`);
    the same move is added to the rest shape. part_faces: {part name: kept triangles, global ids
    (≥ V: part vertices)}."""
    from .mouth_clearance import MOUTH_PARTS, pull_behind_skin

    faces = [np.asarray(part_faces[n], np.int64) for n in MOUTH_PARTS if n in part_faces]
    if not faces:
        return posed, neutral
    every = np.concatenate([f.ravel() for f in faces])
    rows = np.unique(every[every >= V]) - V  # the parts' own vertices, not the skin rim a socket copies
    moved = pull_behind_skin(posed[rows], np.asarray(head.vertices, np.float64), np.asarray(head.faces), margin)
    change = (moved - posed[rows]).astype(posed.dtype)
    if not np.any(change):
        return posed, neutral
    posed, neutral = posed.copy(), neutral.copy()
    posed[rows] += change
    neutral[rows] += change
    return posed, neutral


def eye_pivots(head) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{eyeball name: (centre (3,) mm, rotation (3,3))}: each eyeball's pivot
    (:attr:`EyeFrame.centre` of its neutral shell) and ``head.gaze``'s rotation (the identity
    without a gaze); {} without parts."""
    if not has_parts(head):
        return {}
    gaze = getattr(head, "gaze", None)
    out = {}
    for name, (f0, f1) in zip(head.part_names, np.asarray(head.part_face_range)):
        if name not in EYEBALLS:
            continue
        rows = np.unique(np.asarray(head.parts_faces[f0:f1], np.int64)) - len(head.neutral)
        rotation = np.eye(3) if gaze is None else eye_rotation(*np.asarray(gaze, np.float64)[EYEBALLS.index(name)])
        out[name] = (eye_frame(head.parts_neutral[rows]).centre, rotation)
    return out


def part_meshes(head, vertices: np.ndarray | None = None, turned: bool = True) -> list[PartMesh]:
    """Each of ``head``'s parts as a :class:`PartMesh` (empty list without parts).

    ``vertices``: (V,3) skin vertices the sockets' rims copy (default ``head.vertices``); the
    neutral rims come from ``head.neutral`` and the rim shape keys from ``head.exp_basis``.
    ``turned``: the eyeballs turned by ``head.gaze`` about their pivots (:func:`eye_pivots`);
    False: looking ahead (for exporters that put the turn on the part's object or node).
    """
    if not has_parts(head):
        return []
    skin = np.asarray(head.vertices if vertices is None else vertices, np.float32)
    all_posed = np.concatenate([skin, head.parts_vertices])
    all_neutral = np.concatenate([np.asarray(head.neutral, np.float32), head.parts_neutral])
    basis = None
    if head.parts_exp_basis is not None and head.exp_basis is not None:
        basis = np.concatenate([np.asarray(head.exp_basis, np.float32), head.parts_exp_basis], 1)
    pivots = eye_pivots(head) if turned and getattr(head, "gaze", None) is not None else {}
    out = []
    for name, (f0, f1) in zip(head.part_names, np.asarray(head.part_face_range)):
        faces = np.asarray(head.parts_faces[f0:f1], np.int64)
        ids, local = np.unique(faces, return_inverse=True)
        fuv = np.asarray(head.parts_faces_uv[f0:f1], np.int64)
        uv_ids, local_uv = np.unique(fuv, return_inverse=True)
        posed, rest, deltas = all_posed[ids], all_neutral[ids], None if basis is None else basis[:, ids]
        if name in pivots:
            c, R = pivots[name]
            posed, rest = ((x - c) @ R.T + c for x in (posed, rest))
            deltas = None if deltas is None else deltas @ R.T
        out.append(PartMesh(
            name=name, vertices=posed.astype(np.float32), neutral=rest.astype(np.float32),
            exp_basis=None if deltas is None else deltas.astype(np.float32), faces=local.reshape(-1, 3),
            uv=np.asarray(head.parts_uv, np.float32)[uv_ids], faces_uv=local_uv.reshape(-1, 3),
            material=np.asarray(head.parts_material[f0:f1], np.int64), source=ids,
        ))
    return out


def obj_parts_section(head, n_uv: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The parts for ``head.obj``: vertices (P,3), UVs (Tp,2) and normals (P,3) to append after
    the skin's (V vertices, ``n_uv`` UVs, V normals), and the ``g <part>`` / ``usemtl part_<material>``
    groups with their 1-based ``f v/vt/vn`` lines (vertex ids in ``concatenate(skin, parts)``)."""
    if not has_parts(head):
        return np.zeros((0, 3), np.float32), np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32), ""
    V = len(head.vertices)
    parts_vertices = np.asarray(head.parts_vertices, np.float32).copy()
    for name, (c, R) in eye_pivots(head).items():  # the eyeballs as they look (head.gaze)
        f0, f1 = np.asarray(head.part_face_range)[head.part_names.index(name)]
        rows = np.unique(np.asarray(head.parts_faces[f0:f1], np.int64)) - V
        parts_vertices[rows] = (parts_vertices[rows] - c) @ R.T + c
    everything = np.concatenate([np.asarray(head.vertices, np.float32), parts_vertices])
    faces = np.asarray(head.parts_faces, np.int64)
    normals = vertex_normals_np(everything, faces)[V:]
    corners = np.stack([faces + 1, np.asarray(head.parts_faces_uv, np.int64) + 1 + n_uv, faces + 1], -1)
    text = []
    for name, (f0, f1) in zip(head.part_names, np.asarray(head.part_face_range)):
        text.append(f"g {name}\n")
        mats = np.asarray(head.parts_material[f0:f1])
        cuts = np.flatnonzero(np.diff(mats)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(mats)]):
            text.append(f"usemtl part_{head.part_material_names[int(mats[a])]}\n")
            rows = corners[f0 + a : f0 + b].reshape(-1, 9)
            text.append((("f %d/%d/%d %d/%d/%d %d/%d/%d\n") * len(rows)) % tuple(rows.ravel().tolist()))
    return parts_vertices, head.parts_uv, normals, "".join(text)


def mtl_parts_text(head) -> str:
    """``newmtl part_<material>`` blocks with flat diffuse colours (empty without parts)."""
    if not has_parts(head):
        return ""
    lines = []
    for name, rgb in zip(head.part_material_names, np.asarray(head.part_material_colors, np.float64)):
        lines += [f"newmtl part_{name}", "Ka 0 0 0", "Kd {:.4f} {:.4f} {:.4f}".format(*rgb),
                  "Ks 0.3 0.3 0.3" if name in ("sclera", "iris", "pupil", "teeth") else "Ks 0.05 0.05 0.05",
                  "Ns 40", "d 1", "illum 2"]
    return "\n".join(lines) + "\n"


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0,1] → linear (glTF ``baseColorFactor`` and Blender colours are linear)."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _morph_accessor(builder, deltas: np.ndarray, array_buffer: int, still: float = 1e-5) -> int:
    """A morph target's POSITION accessor: sparse (indices + values of the rows that move more
    than ``still``, in the glTF units, i.e. 0.01 mm; zeros elsewhere, glTF 2.0 ``accessor.sparse``)
    when fewer than half the rows move, as for most expressions on most parts (a jaw shape does
    not move the eyes: ICT's deltas there are float noise up to 1e-6 m); dense otherwise."""
    deltas = np.ascontiguousarray(deltas, np.float32)
    moving = np.flatnonzero(np.abs(deltas).max(1) > still)
    if len(moving) * 2 >= len(deltas):
        return builder.accessor(deltas, "VEC3", array_buffer, minmax=True)
    stored = np.zeros_like(deltas)
    stored[moving] = deltas[moving]
    accessor = {"componentType": 5126, "count": int(len(deltas)), "type": "VEC3",
                "min": [float(x) for x in stored.min(0)], "max": [float(x) for x in stored.max(0)]}
    if len(moving):
        accessor["sparse"] = {
            "count": int(len(moving)),
            "indices": {"bufferView": builder.view(moving.astype(np.uint32).tobytes()), "componentType": 5125},
            "values": {"bufferView": builder.view(deltas[moving].tobytes())},
        }
    builder.accessors.append(accessor)
    return len(builder.accessors) - 1


def glb_part_nodes(head, builder, nodes: list, meshes: list, materials: list, scale: float) -> None:
    """Append the parts to a glTF document being built (``backend.export.write_glb``): one mesh
    and node per part, a child of node 0 (the head), one primitive per material (flat
    ``baseColorFactor``), the head's morph targets and weights when it has them. ``builder``:
    the export's buffer builder (``view``/``accessor``); ``scale``: mm → glTF units."""
    if not has_parts(head):
        return

    array_buffer, element_buffer = 34962, 34963
    morphs = head.exp_basis is not None and head.parts_exp_basis is not None and len(head.exp_names) > 0
    weights = np.zeros(len(head.exp_names) if morphs else 0, np.float64)
    if morphs:
        coeffs = np.asarray(head.exp_coeffs, np.float64).reshape(-1)
        weights[: min(len(coeffs), len(weights))] = coeffs[: len(weights)]
    gltf_material: dict[int, int] = {}
    children = []
    pivots = eye_pivots(head) if getattr(head, "gaze", None) is not None else {}
    for part in part_meshes(head, turned=False):
        base = part.neutral if morphs else part.vertices
        node: dict = {"name": part.name}
        if part.name in pivots:  # the eyeball around its centre, turned by the node (the gaze)
            centre = pivots[part.name][0]
            base = base - centre.astype(np.float32)
            yaw, pitch = np.asarray(head.gaze, np.float64)[EYEBALLS.index(part.name)]
            node["translation"] = [float(c) for c in centre * scale]
            node["rotation"] = [float(q) for q in gaze_quaternion(yaw, pitch)]
        vidx, tidx, faces = split_seams(part.faces, part.faces_uv)
        uv = part.uv[tidx].copy()
        uv[:, 1] = 1.0 - uv[:, 1]
        attributes = {
            "POSITION": builder.accessor(base[vidx] * scale, "VEC3", array_buffer, minmax=True),
            "NORMAL": builder.accessor(vertex_normals_np(base, part.faces)[vidx], "VEC3", array_buffer),
            "TEXCOORD_0": builder.accessor(uv, "VEC2", array_buffer),
        }
        targets = None
        if morphs:
            targets = [{"POSITION": _morph_accessor(builder, part.exp_basis[k][vidx] * scale, array_buffer)}
                       for k in range(len(part.exp_basis))]
        primitives = []
        for m in np.unique(part.material):
            if int(m) not in gltf_material:
                name = head.part_material_names[int(m)]
                colour = [float(c) for c in srgb_to_linear(head.part_material_colors[int(m)])] + [1.0]
                materials.append({"name": f"part_{name}", "doubleSided": False, "pbrMetallicRoughness": {
                    "baseColorFactor": colour, "metallicFactor": 0.0,
                    "roughnessFactor": 0.3 if name in ("sclera", "iris", "pupil", "teeth") else 0.7}})
                gltf_material[int(m)] = len(materials) - 1
            primitive = {"attributes": attributes, "mode": 4, "material": gltf_material[int(m)],
                         "indices": builder.accessor(faces[part.material == m], "SCALAR", element_buffer, minmax=True)}
            if targets is not None:
                primitive["targets"] = targets
            primitives.append(primitive)
        mesh = {"name": part.name, "primitives": primitives}
        if morphs:
            mesh["weights"] = [float(w) for w in weights]
            mesh["extras"] = {"targetNames": list(head.exp_names)}
        meshes.append(mesh)
        node["mesh"] = len(meshes) - 1
        nodes.append(node)
        children.append(len(nodes) - 1)
    nodes[0]["children"] = children


def boundary_vertices(faces: np.ndarray, n_verts: int) -> np.ndarray:
    """(V,) bool: vertices on an open edge (an edge of one triangle only) of faces (F,3)."""
    faces = np.asarray(faces, np.int64)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    out = np.zeros(n_verts, bool)
    out[unique[counts == 1].ravel()] = True
    return out


def _first_hits(origins: np.ndarray, directions: np.ndarray, verts: np.ndarray, faces: np.ndarray, reach: float,
                near: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """The first triangle each ray ``origins + s·directions`` (N,3 each, unit directions) meets at
    s ∈ (``near``, ``reach``]; triangles ``faces`` (F,3) over ``verts`` (V,3), counter-clockwise
    from outside. Returns (s (N,), inf where none; cos (N,) = −direction·(that triangle's unit
    normal): > 0 when the ray meets its outer face, 0 where none)."""
    o = np.asarray(origins, np.float64)
    d = np.asarray(directions, np.float64)
    verts = np.asarray(verts, np.float64)
    faces = np.asarray(faces, np.int64)
    first = np.full(len(o), np.inf)
    cos_first = np.zeros(len(o))
    if len(o) == 0 or len(faces) == 0:
        return first, cos_first
    a, b, c = (verts[faces[:, k]] for k in range(3))
    centre = (a + b + c) / 3.0
    radius = float(np.max(np.linalg.norm(np.stack([a, b, c]) - centre, axis=-1)))
    # candidates: triangles whose centre lies in the ball around each ray's segment
    from scipy.spatial import cKDTree  # lazy: Blender's Python has no scipy (export imports this module)

    hits = cKDTree(centre).query_ball_point(o + 0.5 * reach * d, 0.5 * reach + radius)
    counts = np.fromiter(map(len, hits), np.int64, len(hits))
    if counts.sum() == 0:
        return first, cos_first
    pi = np.repeat(np.arange(len(o)), counts)
    fi = np.concatenate([np.asarray(h, np.int64) for h in hits])
    hit, t, det = ray_triangle_pairs(o[pi], d[pi], a[fi], b[fi], c[fi], reach)
    hit &= t > near
    np.minimum.at(first, pi[hit], t[hit])
    is_first = hit & (t == first[pi])
    area2 = np.linalg.norm(np.cross(b[fi[is_first]] - a[fi[is_first]], c[fi[is_first]] - a[fi[is_first]]), axis=1)
    cos_first[pi[is_first]] = det[is_first] / np.maximum(area2, 1e-30)  # det = −d·(e1×e2)
    return first, cos_first


def first_skin_hit(origins: np.ndarray, directions: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray,
                   reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Where rays ``origins + s·directions`` (N,3 each, unit directions), s ∈ (0, ``reach``], first
    meet the skin (V,3), faces (F,3) counter-clockwise from outside. Returns (s (N,), inf where
    none; facing (N,) bool: the ray meets that triangle's outer face, coming from the side its
    normal points to, so the origin lies on the skin's outside there)."""
    s, cos = _first_hits(origins, directions, skin, skin_faces, reach)
    return s, cos > 0


def ray_triangle_pairs(o: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, reach: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Möller–Trumbore for N (ray, triangle) pairs: rays ``o + s·d`` (N,3 each), triangles with
    corners a, b, c (N,3 each). Returns (hit (N,) bool: met at s ∈ (0, ``reach``], s (N,),
    det (N,) = −d·((b − a)×(c − a)): positive when the ray meets the face against its normal
    (from the side the normal points to), negative when it runs along it)."""
    e1, e2 = b - a, c - a
    h = np.cross(d, e2)
    det = np.einsum("nc,nc->n", e1, h)
    ok = np.abs(det) > 1e-12
    inv = 1.0 / np.where(ok, det, 1.0)
    sv = o - a
    u = np.einsum("nc,nc->n", sv, h) * inv
    qv = np.cross(sv, e1)
    v = np.einsum("nc,nc->n", d, qv) * inv
    t = np.einsum("nc,nc->n", e2, qv) * inv
    return ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9) & (t <= reach), t, det


@dataclass(frozen=True)
class SkinDepths:
    """Where a part and the skin cross, per part vertex (N,), mm ≥ 0 (:func:`skin_depths`).

    ``through``: how far the vertex sticks out through the skin (the skin's outer face lies inside
    the part, behind the vertex: the part shows outside the skin there). ``buried``: how deep the
    vertex lies in the skin's tissue (the skin's inner face lies inside the part, behind it: e.g.
    an eyeball under a lid that dips into it, hidden but overlapping)."""

    through: np.ndarray
    buried: np.ndarray


def skin_depths(points: np.ndarray, part_faces: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray,
                reach: float = 5.0) -> SkinDepths:
    """How the skin crosses a part: points (N,3) of one closed part mesh (an eyeball, the teeth)
    with its faces (F',3), the skin (V,3) with faces (F,3), both counter-clockwise from outside;
    same units (mm).

    From each vertex p the ray ``p − s·n`` runs back into the part (n its outward vertex normal).
    The first skin triangle it meets at s ≤ ``reach``, before the ray leaves the part, is the skin
    crossing the part; the depth is p's distance from that triangle's plane (s·cos of the angle
    between the ray and the triangle's normal: across the skin, not along a slanting ray). Met on
    its outer face, p sticks out through the skin by that depth; on its inner face, p lies that
    deep in the skin's tissue. A part seen through an opening (the eye between the lids, teeth
    between the lips) has no skin inside it: both are 0, as they are where the ray leaves a thin
    part (a tooth) before it meets the lip, or never runs inside the part (a vertex whose normal
    points into the part, in a crevice between teeth) or leaves through a hole (the gums and
    tongue mesh has a few open edges). Open parts (the sockets, stitched to the lid and lip rims)
    read nothing meaningful."""
    p = np.asarray(points, np.float64)
    n = vertex_normals_np(p, part_faces).astype(np.float64)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    t, cos = _first_hits(p, -n, skin, skin_faces, reach)
    # only rays that meet the skin: where do they leave the part (their first own triangle past
    # 1 µm, met from inside: cos < 0)? The part's whole extent, for an eyeball's long chords
    met = np.flatnonzero(np.isfinite(t))
    extent = float(np.linalg.norm(p.max(0) - p.min(0))) if len(p) else 0.0
    leave, cos_leave = _first_hits(p[met], -n[met], p, part_faces, extent, near=1e-3)
    inside = np.zeros(len(p), bool)
    inside[met] = (cos_leave < 0) & (t[met] < leave)
    depth = np.zeros(len(p))
    depth[inside] = t[inside] * np.abs(cos[inside])
    return SkinDepths(through=np.where(cos > 0, depth, 0.0), buried=np.where(cos < 0, depth, 0.0))


_PREVIEW_CACHE: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}  # the last head's, by digest


def preview_parts(head, tile: int, shade_eyes: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The parts as one mesh for the preview renderer, coloured through an extra UV tile.

    Every triangle's UVs sit in its material's swatch in the UV tile starting at u = ``tile``
    (the skin's tiles come first; :func:`swatch_tile` paints it): at full colour, or, with
    ``shade_eyes``, each eyeball corner at its share of the colour that the lids let through
    (:func:`backend.eye_shading.lid_visibility` against ``head.vertices``, the eyeballs as they
    look). Returns (verts (N,3) mm, faces (F,3) local, uv (M,2), faces_uv (F,3)); empty arrays
    without parts.

    The last shaded result is kept, keyed by a digest of every input: a head's previews (photo
    panel, turntable, per view) shade its eyes once. Treat its arrays as read-only."""
    if not shade_eyes or not has_parts(head):
        return _preview_parts(head, tile, shade_eyes)
    gaze = np.zeros(0) if getattr(head, "gaze", None) is None else np.asarray(head.gaze)
    key = array_digest(np.asarray(head.vertices), np.asarray(head.faces), np.asarray(head.parts_vertices),
                       np.asarray(head.parts_faces), np.asarray(head.parts_material), np.asarray(head.parts_neutral),
                       np.asarray(head.part_face_range), gaze, extra=(tile, tuple(head.part_names),
                                                                       tuple(head.part_material_names)))
    if key not in _PREVIEW_CACHE:
        _PREVIEW_CACHE.clear()
        _PREVIEW_CACHE[key] = _preview_parts(head, tile, shade_eyes)
    return _PREVIEW_CACHE[key]


def _preview_parts(head, tile: int, shade_eyes: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`preview_parts` without the cache."""
    meshes = part_meshes(head)
    if not meshes:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64), np.zeros((0, 2), np.float32), np.zeros((0, 3), np.int64)
    M = len(head.part_material_names)
    u = tile + (np.arange(M) + 0.5) / M
    uv = [np.stack([u, np.full(M, SWATCH_FULL)], 1)]
    pieces = [(part.name, part.vertices, part.faces, part.material) for part in meshes]
    shares = {}
    if shade_eyes:
        from .eye_shading import IRIS_REFERENCE, SCLERA_REFERENCE, eye_shading, fine_eyeball

        names = list(head.part_material_names)
        references = {names.index(m): q for m, q in (("sclera", SCLERA_REFERENCE), ("iris", IRIS_REFERENCE)) if m in names}
        pieces = [(name, *fine_eyeball(*mesh)) if name in EYEBALLS else (name, *mesh) for name, *mesh in pieces]
        eyes = [(name, (v, f, m)) for name, v, f, m in pieces if name in EYEBALLS]
        shares = dict(zip([name for name, _ in eyes], eye_shading([e for _, e in eyes], np.asarray(head.vertices),
                                                                 np.asarray(head.faces), references)))
    verts, faces, faces_uv, offset, n_uv = [], [], [], 0, M
    for name, pv, pf, material in pieces:
        if name in shares:
            corner_uv = np.stack([u[np.repeat(material, 3)], swatch_v(shares[name].ravel())], 1)
            uv.append(corner_uv)
            faces_uv.append(n_uv + np.arange(len(corner_uv)).reshape(-1, 3))
            n_uv += len(corner_uv)
        else:
            faces_uv.append(np.repeat(material[:, None], 3, 1))
        verts.append(pv)
        faces.append(pf + offset)
        offset += len(pv)
    return (np.concatenate(verts).astype(np.float32), np.concatenate(faces),
            np.concatenate(uv).astype(np.float32), np.concatenate(faces_uv))


SWATCH_FULL = 0.75  # the swatch tile's v of a material's full colour (its upper half is flat)


def swatch_v(share: np.ndarray) -> np.ndarray:
    """The swatch tile's v (...) for ``share`` (...) in [0,1] of a material's colour: the tile's
    lower half ramps from black (v = 0) to the full colour (v = ½)."""
    return 0.5 * np.clip(np.asarray(share, np.float64), 0.0, 1.0)


def swatch_tile(head, height: int) -> np.ndarray:
    """(height, height, 3) float32: one vertical stripe per part material, its colour as the photo
    shows it (``head.part_seen_colors``, else ``part_material_colors``; sRGB [0,1], like the albedo map) over the upper half (v ≥ ½, top row v = 1) and ramping down to
    black at the bottom (:func:`swatch_v`); the tile :func:`preview_parts` points at."""
    seen = getattr(head, "part_seen_colors", None)
    colours = np.asarray(head.part_material_colors if seen is None else seen, np.float32)
    stripe = np.repeat(np.arange(len(colours)), int(np.ceil(height / len(colours))))[:height]
    v = 1.0 - (np.arange(height) + 0.5) / height  # (height,) each row's v, top row first
    ramp = np.clip(v / 0.5, 0.0, 1.0).astype(np.float32)
    return (ramp[:, None, None] * colours[stripe][None]).astype(np.float32)

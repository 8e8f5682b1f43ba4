"""Lids that clear the eyeballs: a per-head corrective for the skin around the eyes.

ICT's blendshapes let the closed upper lid dip up to 2.8 mm into the cornea's bulge
(``eyeBlink_*`` at weight 1, mean identity; ``eyeLookDown_*`` 2.2 mm), and some identities put
the open lids' margins a millimetre into the eyeball. :func:`clear_lids` pushes the skin out of
the eyeballs, radially from each eyeball's centre (along the eyeball's normal), so the skin
clears the eyeball's outer shell by ``margin``: for the neutral (identity only) and for each
expression at weight 1, each against the eyeballs of that same shape. The push is a smooth
maximum of 0 and the depth (no kink where the pushed lid meets the untouched skin), so the
corrected lid drapes over the cornea as a real lid does.

The result depends on the identity, hence per head (:func:`backend.head_parts.attach_parts`),
not one correction of the model's bases. numpy only; scipy lazily (ray casting).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EyeShell", "ClearedSkin", "push_out_of_eyes", "clear_lids"]


@dataclass(frozen=True)
class EyeShell:
    """One eyeball's outer shell: ``rows`` (n,) its vertex rows in the parts' vertex array and
    ``faces`` (f,3) triangles over those rows' local indices 0..n-1, counter-clockwise from outside."""

    rows: np.ndarray
    faces: np.ndarray


@dataclass(frozen=True)
class ClearedSkin:
    """The corrected skin: ``neutral`` (V,3) mm and ``exp_basis`` (K,V,3) mm per unit weight;
    ``moved`` the largest push applied (mm), for reports."""

    neutral: np.ndarray
    exp_basis: np.ndarray
    moved: float


def _smooth_max0(x: np.ndarray, width: float) -> np.ndarray:
    """A smooth max(0, x): → 0 for x ≪ −width, → x for x ≫ width, width/2 at 0 (C^∞)."""
    return 0.5 * (x + np.sqrt(x * x + width * width))


@dataclass(frozen=True)
class _ShellRays:
    """One eyeball shape prepared for :func:`_radius`: its centre (3,), largest radius (mm), the
    triangles' corners a, b, c (f,3 each) and a KD-tree of their centres' unit directions from
    the centre. Depends on the shape only, so an eyeball that an expression leaves in place is
    prepared once per head."""

    centre: np.ndarray
    r_max: float
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    tree: object  # scipy.spatial.cKDTree


def _shell_rays(ball: np.ndarray, faces: np.ndarray, centre: np.ndarray | None = None) -> _ShellRays:
    """``ball`` (n,3) with triangles ``faces`` (f,3) prepared for ray queries from ``centre``
    (default: the vertices' mean)."""
    from scipy.spatial import cKDTree  # lazy: the add-on imports head_parts (and so this) without scipy

    ball = np.asarray(ball, np.float64)
    centre = ball.mean(0) if centre is None else np.asarray(centre, np.float64)
    a, b, c = (ball[faces[:, j]] for j in range(3))
    tri_dir = (a + b + c) / 3.0 - centre
    tri_dir /= np.maximum(np.linalg.norm(tri_dir, axis=1, keepdims=True), 1e-12)
    r_max = float(np.linalg.norm(ball - centre, axis=1).max())
    return _ShellRays(centre, r_max, a, b, c, cKDTree(tri_dir))


def _radius(shell: _ShellRays, directions: np.ndarray, k: int = 12) -> np.ndarray:
    """:func:`shell_radius` for a prepared shell."""
    k = min(k, len(shell.a))
    _, cand = shell.tree.query(directions, k=k)  # (N,k)
    cand = cand.reshape(len(directions), k)
    r = _ray_triangles(shell.centre, directions, shell.a, shell.b, shell.c, cand)
    miss = ~np.isfinite(r)
    if miss.any():  # a ray near a long thin triangle: test them all
        every = np.broadcast_to(np.arange(len(shell.a)), (int(miss.sum()), len(shell.a)))
        r[miss] = _ray_triangles(shell.centre, directions[miss], shell.a, shell.b, shell.c, every)
    return r


def shell_radius(centre: np.ndarray, ball: np.ndarray, faces: np.ndarray, directions: np.ndarray, k: int = 12) -> np.ndarray:
    """Where rays from ``centre`` (3,) along unit ``directions`` (N,3) leave a shell that is
    star-shaped around it (vertices ``ball`` (n,3), triangles ``faces`` (f,3)): the distance
    (N,), inf for a ray through a hole. Candidates: the ``k`` triangles whose centres' directions
    are nearest (a KD-tree on the unit sphere), then the exact Möller–Trumbore test on all of
    them if none of those is hit."""
    return _radius(_shell_rays(ball, faces, centre), directions, k)


def _ray_triangles(origin: np.ndarray, d: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Nearest hit t > 0 of rays origin + t·d (d (N,3)) with their candidate triangles
    (cand (N,k) rows of a, b, c (f,3)); inf where none (Möller–Trumbore)."""
    e1, e2 = b[cand] - a[cand], c[cand] - a[cand]  # (N,k,3)
    dd = np.broadcast_to(d[:, None], e1.shape)
    h = np.cross(dd, e2)
    det = np.einsum("nkc,nkc->nk", e1, h)
    ok = np.abs(det) > 1e-12
    inv = 1.0 / np.where(ok, det, 1.0)
    sv = origin - a[cand]
    u = np.einsum("nkc,nkc->nk", sv, h) * inv
    q = np.cross(sv, e1)
    v = np.einsum("nkc,nkc->nk", dd, q) * inv
    t = np.einsum("nkc,nkc->nk", e2, q) * inv
    hit = ok & (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9) & (t > 0)
    return np.where(hit, t, np.inf).min(1)


def push_out_of_eyes(skin: np.ndarray, eyes: list[np.ndarray], shells: list[EyeShell], margin: float = 0.3,
                     width: float = 0.3, prepared: list[_ShellRays] | None = None) -> np.ndarray:
    """Skin (V,3) mm pushed out of the eyeballs: for each eyeball (``eyes`` [(n,3)] the shell's
    vertices, ``shells`` its triangles), a skin vertex p at distance d from the shell's centre c,
    whose direction u = (p − c)/d meets the shell at radius r(u), moves to c + u·(d + s) with
    s = smooth_max(0, r(u) + ``margin`` − d) (:func:`_smooth_max0`, ``width`` mm). Only vertices
    within the shell's largest radius + ``margin`` + 3·``width`` move. ``prepared``: the eyeballs
    already prepared (:func:`_shell_rays`, the same shapes). Returns a new (V,3) array."""
    out = np.asarray(skin, np.float64).copy()
    if prepared is None:
        prepared = [_shell_rays(ball, shell.faces) for ball, shell in zip(eyes, shells)]
    for sr in prepared:
        rel = out - sr.centre
        d = np.linalg.norm(rel, axis=1)
        near = np.flatnonzero((d < sr.r_max + margin + 3 * width) & (d > 1e-6))
        if near.size == 0:
            continue
        u = rel[near] / d[near, None]
        r = _radius(sr, u)
        hit = np.isfinite(r)
        near, u, r = near[hit], u[hit], r[hit]
        push = _smooth_max0(r + margin - d[near], width)
        out[near] = sr.centre + u * (d[near] + push)[:, None]
    return out


def eyeball_seen(skin: np.ndarray, faces: np.ndarray, ball: np.ndarray, shell: EyeShell) -> int:
    """How many of the eyeball's front-facing shell points (vertices and triangle centres whose
    normal is within 60° of +z) are seen from the front (+z) past the skin (V,3), faces (F,3)."""
    from .geometry import vertex_normals_np

    tri = ball[shell.faces]  # (f,3,3)
    n_tri = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n_tri /= np.maximum(np.linalg.norm(n_tri, axis=1, keepdims=True), 1e-12)
    pts = np.concatenate([ball, tri.mean(1)])
    normals = np.concatenate([vertex_normals_np(ball, shell.faces), n_tri])
    front = pts[normals[:, 2] > 0.5]
    return int((~_hit_from_front(front, skin, faces, 30.0)).sum())


def _hit_from_front(origins: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray, reach: float) -> np.ndarray:
    """(N,) bool: whether the ray ``origins + s·(0,0,1)``, s ∈ (0, ``reach``], meets a skin triangle
    (vertices ``skin`` (V,3), triangles ``skin_faces`` (F,3)). The same hits as
    :func:`backend.head_parts.first_skin_hit` with +z directions, from the 2-D candidate search of
    :func:`backend.axis_rays.z_ray_hits` (a 3-D ball around the whole segment held most of the
    triangles over the eye for every ray)."""
    from .axis_rays import z_ray_hits

    out = np.zeros(len(origins), bool)
    out[z_ray_hits(origins, skin, skin_faces, 1.0, reach)[0]] = True
    return out


def clear_lids(neutral: np.ndarray, exp_basis: np.ndarray, parts_neutral: np.ndarray, parts_exp_basis: np.ndarray,
               shells: list[EyeShell], faces: np.ndarray | None = None, closing: tuple[int, ...] = (),
               margin: float = 0.3) -> ClearedSkin:
    """The head's skin corrected so no lid enters an eyeball, at rest and at each expression's
    weight 1. neutral (V,3) and exp_basis (K,V,3) the skin's (mm); parts_neutral (P,3) and
    parts_exp_basis (K,P,3) the parts' (their rows ``shells[i].rows`` are the eyeballs' shells).

    The neutral is pushed out of the rest eyeballs; expression k's delta becomes
    push(neutral' + B_k, eyeballs at weight 1) − neutral' (only the expressions that move the
    skin near an eyeball or move an eyeball are re-evaluated). Each eyeball shape is prepared
    for the ray queries once: the rest eyeballs serve every expression that leaves them in place."""
    neutral = np.asarray(neutral, np.float64)
    basis = np.asarray(exp_basis, np.float64)
    pn = np.asarray(parts_neutral, np.float64)
    pb = np.asarray(parts_exp_basis, np.float64)
    eyes0 = [pn[s.rows] for s in shells]
    rest = [_shell_rays(e, s.faces) for e, s in zip(eyes0, shells)]
    new_neutral = push_out_of_eyes(neutral, eyes0, shells, margin, prepared=rest)
    new_basis = basis.copy()
    # skin vertices that can come near an eyeball under any expression: a generous ball
    centres = [e.mean(0) for e in eyes0]
    reach = [float(np.linalg.norm(e - c, axis=1).max()) + 8.0 for e, c in zip(eyes0, centres)]
    near = np.zeros(len(neutral), bool)
    for c, r in zip(centres, reach):
        near |= np.linalg.norm(new_neutral - c, axis=1) < r
    sub = np.flatnonzero(near)
    moved = float(np.linalg.norm(new_neutral - neutral, axis=1).max())
    # the push is per vertex: a vertex an expression leaves in place (its row exactly 0), beside
    # eyeballs at rest, lands where the rest skin's own push puts it (computed once)
    rest_pushed = push_out_of_eyes(new_neutral[sub], eyes0, shells, margin, prepared=rest)

    def push(points: np.ndarray, eyes_k: list[np.ndarray], prep_k: list[_ShellRays], still: np.ndarray) -> np.ndarray:
        """push_out_of_eyes of the (S,) ``sub`` vertices at ``points``; ``still`` (S,) those at rest."""
        if not all(p is r for p, r in zip(prep_k, rest)):
            return push_out_of_eyes(points, eyes_k, shells, margin, prepared=prep_k)
        out = rest_pushed.copy()
        out[~still] = push_out_of_eyes(points[~still], eyes_k, shells, margin, prepared=prep_k)
        return out

    for k in range(len(basis)):
        skin_moves = np.abs(basis[k][near]).max(initial=0.0) > 1e-3
        eye_moves = any(np.abs(pb[k][s.rows]).max(initial=0.0) > 1e-3 for s in shells)
        if not (skin_moves or eye_moves):
            continue
        eyes_k = [pn[s.rows] + pb[k][s.rows] for s in shells]
        prep_k = [r0 if np.array_equal(e, e0) else _shell_rays(e, s.faces)
                  for e, e0, r0, s in zip(eyes_k, eyes0, rest, shells)]
        weight = 1.0
        still = ~basis[k][sub].any(1)  # (S,) rows exactly 0
        if k in closing and faces is not None:
            shut = int(np.argmax([np.linalg.norm(basis[k][sub][np.linalg.norm(new_neutral[sub] - c, axis=1) < r], axis=1).mean()
                                  for c, r in zip(centres, reach)]))  # the eye this blink shuts
            for scale in (1.0, 1.1, 1.2, 1.3, 1.4, 1.5):
                skin = new_neutral.copy()
                skin[sub] = push((new_neutral + scale * basis[k])[sub], eyes_k, prep_k, still)
                if eyeball_seen(skin, faces, eyes_k[shut], shells[shut]) == 0:
                    break
            weight = scale + 0.05  # 0.05 past the first that shows nothing
        posed = new_neutral + weight * basis[k]
        pushed = push(posed[sub], eyes_k, prep_k, still)
        new_basis[k][sub] = pushed - new_neutral[sub]
        moved = max(moved, float(np.linalg.norm(pushed - posed[sub], axis=1).max()))
    return ClearedSkin(neutral=new_neutral.astype(np.float32), exp_basis=new_basis.astype(np.float32), moved=moved)

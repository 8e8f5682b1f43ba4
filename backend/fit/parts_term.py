"""The face model's parts in the coarse fit's photometric loss, and the gaze.

Where the photo shows eyes and an open mouth, the skin-only render shows the background through
the model's holes. With :class:`PartsFitConfig` ``enabled``, the coarse fit ends with a short
stage (:func:`fit_parts`) that renders the skin
together with the parts a head keeps (:func:`backend.head_parts.kept_part_faces`: sockets,
gums and tongue, teeth, eyeballs painted sclera/iris/pupil), each material one flat colour fitted
from the photo (a swatch tile appended to the albedo map; the eyeball's sclera/iris/pupil a
radial profile, so the iris's place has a gradient), and adds L_pixel over the pixels of a region
around the detected eyes and inner lips (:func:`landmark_region`) that show a part. That render
takes the fitted skin, pose, light and albedo as they are: the stage fits only the parts' colours
and the gaze, and the skin's fit is exactly what it was without it.

Gaze: two angles per eye and expression row, (yaw, pitch) in radians, turn each eyeball rigidly
about its centre in the photometric stage, from 0 (looking ahead), pulled to 0 by ``gaze_reg``.
ICT's ``eyeLook*`` blendshapes do not move the eyeballs (only lids, sockets, lashes and the
lacrimal/occlusion layers: the eyeballs' rows are 0 in those shapes), so they cannot carry it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..camera import Camera
from ..facemodel import FaceModel
from ..gaze import gaze_rotation
from ..losses import pixel_loss
from ..render.renderer import RenderResult, RenderSettings, render

__all__ = ["PartsFitConfig", "PartsTerm", "parts_term", "fit_parts", "landmark_region", "turn_eyes"]

REGION_LANDMARKS = (tuple(range(36, 42)), tuple(range(42, 48)), tuple(range(60, 68)))  # eyes, inner lips


@dataclass(frozen=True)
class PartsFitConfig:
    """The parts in the coarse fit (:mod:`.parts_term`).

    - ``enabled``: render the parts and add the eye/mouth region term (needs a model with parts,
      a UV albedo map and one person per fit; off otherwise).
    - ``weight``: the region term's weight relative to the skin's L_pixel weight.
    - ``dilate``: the region reaches this many crop pixels (of the ``S``-pixel crop) beyond the
      eye contours and inner lips.
    - ``gaze``: fit the gaze (each eyeball's yaw and pitch) by the region term; ``gaze_reg``:
      weight of their mean square (radians²).
    - ``steps``, ``size``: Adam steps of the stage and the render's side (pixels).
    - ``colour_prior``: weight of the squared distance of the fitted material colours from
      :data:`backend.head_parts.PART_MATERIALS` (sRGB [0,1]); ``lr_colour``, ``lr_gaze``: Adam rates.
    """

    enabled: bool = False
    steps: int = 40
    size: int = 112
    weight: float = 1.0
    dilate: float = 3.0
    gaze: bool = True
    gaze_reg: float = 20.0
    colour_prior: float = 10.0
    lr_colour: float = 0.02
    lr_gaze: float = 0.02


def _inside_polygon(points: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """points (P,2), poly (B,n,2) closed implicitly → (B,P) bool (crossing number)."""
    a, b = poly, poly.roll(-1, 1)  # (B,n,2) edges a→b
    px, py = points[None, :, None, 0], points[None, :, None, 1]  # (1,P,1)
    ax, ay, bx, by = a[:, None, :, 0], a[:, None, :, 1], b[:, None, :, 0], b[:, None, :, 1]
    crosses = (ay > py) != (by > py)
    x_at = ax + (py - ay) * (bx - ax) / torch.where(by == ay, torch.ones_like(by), by - ay)
    return ((crosses & (px < x_at)).sum(-1) % 2) == 1


def _segment_distance(points: torch.Tensor, poly: torch.Tensor) -> torch.Tensor:
    """Distance (B,P) from points (P,2) to the closed polyline poly (B,n,2)."""
    a, b = poly[:, None], poly.roll(-1, 1)[:, None]  # (B,1,n,2)
    p = points[None, :, None]  # (1,P,1,2)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / ab.pow(2).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (a + t[..., None] * ab - p).norm(dim=-1).min(-1).values


def landmark_region(landmarks: torch.Tensor, size: int, dilate: float) -> torch.Tensor:
    """Pixels around the eyes and the mouth opening: inside or within ``dilate`` px of the
    polygons of 68-point landmarks 36–41, 42–47 (eye contours) and 60–67 (inner lips).
    landmarks (B,68,2) pixel coordinates of a ``size``² image (pixel centres at integers).
    Returns (B,size,size) float 0/1."""
    B = landmarks.shape[0]
    ys, xs = torch.meshgrid(torch.arange(size, device=landmarks.device, dtype=landmarks.dtype),
                            torch.arange(size, device=landmarks.device, dtype=landmarks.dtype), indexing="ij")
    pts = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)  # (P,2)
    region = torch.zeros(B, size * size, dtype=torch.bool, device=landmarks.device)
    for ids in REGION_LANDMARKS:
        poly = landmarks[:, list(ids)]
        region |= _inside_polygon(pts, poly) | (_segment_distance(pts, poly) <= dilate)
    return region.reshape(B, size, size).to(landmarks.dtype)


def turn_eyes(parts: torch.Tensor, eyes: list[torch.Tensor], angles: torch.Tensor) -> torch.Tensor:
    """Each eyeball turned rigidly about its centre (the mean of its vertices). parts (B,P,3) mm;
    eyes: per eye (n,) rows of ``parts``; angles (B,E,2) (yaw about +y: the cornea to +x; pitch
    about +x: the cornea down), radians. Returns a new (B,P,3)."""
    out = parts
    for e, rows in enumerate(eyes):
        pts = out[:, rows]
        centre = pts.mean(1, keepdim=True)
        turned = (pts - centre) @ gaze_rotation(angles[:, e]).transpose(1, 2) + centre
        out = out.index_copy(1, rows, turned)
    return out


class PartsTerm(torch.nn.Module):
    EYE_RADIUS_MM = 12.0  # the eye tile's radial span
    """The parts' mesh, material colours and gaze for one fit (see the module docstring).

    Built by :func:`parts_term`. Parameters: ``colours`` (M,3) sRGB [0,1]; ``gaze`` (R,2,2)
    (R expression rows; eye L/R; h, v). Buffers: the kept parts' restricted bases.
    """

    def __init__(self, model: FaceModel, config: PartsFitConfig, landmarks: torch.Tensor, n_exp_rows: int):
        super().__init__()
        from ..head_parts import IRIS_RADIUS_MM, PART_MATERIALS, PUPIL_RADIUS_MM, kept_part_faces

        dev, dt = landmarks.device, landmarks.dtype
        V = model.n_verts
        kept = kept_part_faces(model.parts_info, V)
        faces = np.concatenate([f for _, f, _, _ in kept])
        material = np.concatenate([m for *_, m in kept])
        eye_face = np.concatenate([np.full(len(f), name.startswith("eyeball")) for name, f, _, _ in kept])
        rows = np.unique(faces[faces >= V]) - V  # (P',) part vertex rows used
        local = np.full(model.parts_mean.shape[0], -1, np.int64)
        local[rows] = np.arange(len(rows))
        faces = np.where(faces < V, faces, V + local[np.maximum(faces - V, 0)])
        r = torch.from_numpy(rows).to(model.parts_mean.device)
        self.config = config
        self.n_skin_faces = model.n_faces
        self.register_buffer("mean", model.parts_mean[r].to(dev, dt))
        self.register_buffer("id_basis", model.parts_id_basis[:, r].to(dev, dt))
        self.register_buffer("exp_basis", model.parts_exp_basis[:, r].to(dev, dt))
        self.register_buffer("faces", torch.cat([model.faces.to(dev), torch.from_numpy(faces).to(dev)]))
        M = len(PART_MATERIALS)
        tiles = model.uv_tiles
        # UVs: the skin's, then one swatch per material (tile ``tiles``), then each eyeball vertex
        # at its distance from the eyeball's axis along tile ``tiles + 1`` (a radial profile
        # sclera/iris/pupil: a smooth texture, so the iris's place in the image has a gradient)
        swatch_uv = np.stack([tiles + (np.arange(M) + 0.5) / M, np.full(M, 0.5)], 1)
        mean_all = np.concatenate([model.mean.cpu().numpy(), model.parts_info.mean])
        eye_rows = np.unique(faces[eye_face])  # global ids (skin + kept parts rows)
        radial = np.full(len(eye_rows), self.EYE_RADIUS_MM)
        for name, f, _, _ in kept:
            if name.startswith("eyeball"):
                ids = np.unique(f)
                pts = mean_all[ids]  # original global ids
                centre = pts.mean(0)
                axis = pts[np.argmax(pts[:, 2])] - centre
                axis /= max(np.linalg.norm(axis), 1e-9)
                rel = pts - centre
                along = rel @ axis
                r = np.where(along > 0, np.linalg.norm(rel - along[:, None] * axis, axis=1), self.EYE_RADIUS_MM)
                radial[np.searchsorted(eye_rows, np.where(ids < V, ids, V + local[np.maximum(ids - V, 0)]))] = r
        eye_uv = np.stack([tiles + 1 + np.clip(radial / self.EYE_RADIUS_MM, 0, 1), np.full(len(eye_rows), 0.5)], 1)
        uv = np.concatenate([model.uv.cpu().numpy(), swatch_uv, eye_uv])
        T = model.uv.shape[0]
        part_uv = np.repeat(material[:, None] + T, 3, 1)
        part_uv[eye_face] = T + M + np.searchsorted(eye_rows, faces[eye_face])
        self.register_buffer("uv", torch.from_numpy(uv).to(dev, dt))
        self.register_buffer("faces_uv", torch.cat([model.faces_uv.to(dev), torch.from_numpy(part_uv).to(dev)]))
        self.register_buffer("part_face", torch.cat([torch.zeros(model.n_faces, dtype=torch.bool),
                                                     torch.ones(len(faces), dtype=torch.bool)]).to(dev))
        names_m = list(PART_MATERIALS)
        self.eye_material = (names_m.index("pupil"), names_m.index("iris"), names_m.index("sclera"))
        self.eye_radii = (PUPIL_RADIUS_MM, IRIS_RADIUS_MM)
        self.register_buffer("colour0", torch.tensor(list(PART_MATERIALS.values()), device=dev, dtype=dt))
        self.colours = torch.nn.Parameter(self.colour0.clone())
        self.tiles = tiles
        eyes = [np.unique(f) for name, f, _, _ in kept if name.startswith("eyeball")]
        self.eye_rows = [torch.from_numpy(local[ids - V]).to(dev) for ids in eyes]  # rows of the parts' vertices
        self.gaze = torch.nn.Parameter(torch.zeros(n_exp_rows, len(eyes), 2, device=dev, dtype=dt))
        self.active = False
        self.landmarks = landmarks

    def start(self) -> None:
        """Begin the photometric stage: the gaze (from 0, looking ahead) moves the eyeballs."""
        with torch.no_grad():
            self.gaze.zero_()
        self.active = self.config.gaze

    def parameter_groups(self) -> list[dict]:
        groups = [{"params": [self.colours], "lr": self.config.lr_colour}]
        if self.config.gaze:
            groups.append({"params": [self.gaze], "lr": self.config.lr_gaze})
        return groups

    def render(self, verts: torch.Tensor, id_coeffs: torch.Tensor, exp: torch.Tensor, pose: torch.Tensor,
               camera: Camera, sh: torch.Tensor, albedo: torch.Tensor, settings: RenderSettings) -> RenderResult:
        """Skin verts (V,N,3) with the parts for id (1|V,K_id), exp (V,K_exp), rendered like the
        skin (pose (V,7) for ``camera``, sh (V,27), albedo (1,A,A·tiles,3) UV map). All of these
        are detached: gradients reach only :attr:`colours` and :attr:`gaze`."""
        verts, id_coeffs, exp, pose, sh, albedo = (t.detach() for t in (verts, id_coeffs, exp, pose, sh, albedo))
        id_coeffs = id_coeffs.expand(verts.shape[0], -1)
        # the parts follow the skin's coefficients; only the gaze learns from them
        parts = (self.mean + torch.einsum("bk,kvc->bvc", id_coeffs, self.id_basis)
                 + torch.einsum("bk,kvc->bvc", exp, self.exp_basis))
        if self.active:
            gaze = self.gaze if self.gaze.shape[0] == parts.shape[0] else self.gaze.expand(parts.shape[0], -1, -1)
            parts = turn_eyes(parts, self.eye_rows, gaze)
        A = albedo.shape[1]
        colours = self.colours.clamp(0, 1).to(albedo.dtype)
        block = (torch.arange(A, device=albedo.device) * colours.shape[0]) // A  # texel column → material
        swatch = colours[block]  # (A,3)
        r = (torch.arange(A, device=albedo.device, dtype=albedo.dtype) + 0.5) / A * self.EYE_RADIUS_MM
        pupil, iris, sclera = (colours[i] for i in self.eye_material)
        profile = torch.where((r < self.eye_radii[0])[:, None], pupil, torch.where((r < self.eye_radii[1])[:, None], iris, sclera))
        tiles = torch.cat([swatch, profile])[None, None].expand(albedo.shape[0], A, -1, -1)  # (1,A,2A,3)
        texture = torch.cat([albedo, tiles], 2)
        settings = RenderSettings(background=settings.background, u_range=(0.0, float(self.tiles + 2)),
                                  cull_backfaces=settings.cull_backfaces, edge_tolerance=settings.edge_tolerance,
                                  max_candidates=settings.max_candidates, z_near=settings.z_near)
        return render(torch.cat([verts, parts], 1), self.faces, pose, camera, sh, texture=texture, uv=self.uv,
                      faces_uv=self.faces_uv, settings=settings)

    def region(self, size: int, S: int) -> torch.Tensor:
        """(V,size,size) the eye/mouth region at ``size`` px (landmarks given at the ``S`` crop)."""
        lm = self.landmarks * (size / S) + 0.5 * (size / S) - 0.5
        return landmark_region(lm, size, self.config.dilate * size / S)

    def losses(self, image: torch.Tensor, rend: RenderResult, region: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"parts": L_pixel over the region's pixels that show a part (``rend`` from
        :meth:`render`, image (V,H,W,3), region (V,H,W)), "parts_reg": gaze and colour priors}."""
        on_part = self.part_face[rend.face_idx.clamp_min(0)] & rend.mask
        mask = region * on_part.to(region.dtype)
        reg = self.config.colour_prior * (self.colours - self.colour0).pow(2).sum(-1).mean()
        if self.config.gaze:
            reg = reg + self.config.gaze_reg * self.gaze.pow(2).mean()
        return {"parts": pixel_loss(image, rend.image, mask), "parts_reg": reg}


def parts_term(model: FaceModel, config: PartsFitConfig, landmarks: torch.Tensor, n_exp_rows: int,
               has_albedo_map: bool, n_groups: int) -> PartsTerm | None:
    """A :class:`PartsTerm` when ``config.enabled`` and the fit can use it (a model with parts, a
    UV albedo map, one person); None otherwise. landmarks (V,68,2) crop px."""
    if not (config.enabled and model.has_parts and has_albedo_map and n_groups == 1):
        return None
    return PartsTerm(model, config, landmarks, n_exp_rows)


def fit_parts(term: PartsTerm, images: torch.Tensor, verts: torch.Tensor, id_coeffs: torch.Tensor, exp: torch.Tensor,
              pose: torch.Tensor, sh: torch.Tensor, albedo: torch.Tensor, settings: RenderSettings,
              pixel_weight: float = 1.3, camera: Camera | None = None) -> dict[str, float]:
    """The parts' stage after a coarse fit: ``term.config.steps`` Adam steps of the region term
    (weight ``pixel_weight``·``weight``: the fit's L_pixel weight) at ``term.config.size`` pixels, on the
    fitted skin (images (V,S,S,3) [0,1]; verts (V,N,3) mm; id (1|V,K_id); exp (V,K_exp); pose (V,7)
    for the S² crop; sh (V,27); albedo (1,A,A·tiles,3); ``camera`` the S² crop's, None:
    orthographic). Returns the stage's history row."""
    from ..camera import scale_pose

    cfg = term.config
    S = images.shape[1]
    size = min(cfg.size, S)
    x = images.permute(0, 3, 1, 2)
    img_s = x if size == S else torch.nn.functional.interpolate(x, size=(size, size), mode="area")
    img_s = img_s.permute(0, 2, 3, 1)
    region = term.region(size, S)
    pose_s, cam = scale_pose(pose, size / S), Camera(size, size) if camera is None else camera.resized(size, size)
    term.start()
    opt = torch.optim.Adam(term.parameter_groups())
    weight = pixel_weight * cfg.weight
    terms: dict[str, torch.Tensor] = {}
    for _ in range(cfg.steps):
        terms = term.losses(img_s, term.render(verts, id_coeffs, exp, pose_s, cam, sh, albedo, settings), region)
        loss = weight * terms["parts"] + terms["parts_reg"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"stage": "parts", **{k: float(v.detach()) for k, v in terms.items()}}

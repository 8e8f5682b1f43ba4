"""What makes a synthetic render less friendly than the classic suite's bald, eyeless head in an
orthographic camera: the head's parts (eyes, teeth, mouth interior), a hair-coloured scalp, a
perspective camera, coloured and two-light illumination, a busy background and pixel noise.

Pure helpers for :func:`evaluation.synthetic.make_face` (which draws and renders); each works on
its own and is deterministic for its ``rng``. Colours are albedo units (sRGB-like, [0,1]), like
:func:`evaluation.synthetic.random_albedo`. The extra texture tiles sit after the skin's:
u ∈ [tiles, tiles+1) the parts' colour swatches (:func:`backend.head_parts.swatch_tile`),
u ∈ [tiles+1, tiles+2) the hair.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch
from scipy.ndimage import zoom

from backend.camera import euler_to_rotation
from backend.head_parts import attach_parts, preview_parts, swatch_tile
from backend.lighting import sh_ambient, sh_directional

__all__ = ["IRIS_COLOURS", "HAIR_COLOURS", "FRAME_MM", "parts_mesh", "scalp_faces", "hair_tile", "hair_uv",
           "perspective_pose", "Lights", "random_lights", "busy_background", "Mesh"]

Mesh = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # verts (1,N,3) mm, faces (F,3), uv (T,2), faces_uv (F,3)

IRIS_COLOURS = ((0.33, 0.22, 0.13), (0.20, 0.13, 0.08), (0.30, 0.42, 0.55), (0.35, 0.42, 0.28), (0.45, 0.45, 0.45))
HAIR_COLOURS = ((0.06, 0.05, 0.04), (0.20, 0.13, 0.08), (0.38, 0.26, 0.15), (0.70, 0.58, 0.38), (0.45, 0.20, 0.10),
                (0.60, 0.60, 0.60))  # black, dark brown, brown, blond, auburn, grey
FRAME_MM = 36.0  # the 35-mm film frame's width: focal lengths are given 35-mm equivalent


def parts_mesh(model, id_coeffs: torch.Tensor, exp_coeffs: torch.Tensor, skin: torch.Tensor, tile: int,
               rng: np.random.Generator, tile_size: int) -> tuple[Mesh, np.ndarray]:
    """The model's parts (eyeballs with sclera/iris/pupil, eye and mouth sockets, gums, tongue,
    teeth; :func:`backend.head_parts.attach_parts`) for these coefficients, as one mesh whose UVs
    point at the colour swatches of the tile starting at u = ``tile``. id (1,K_id), exp (1,K_exp);
    skin (1,V,3) mm the posed skin (the sockets' rims are its vertices). The iris colour is drawn
    from :data:`IRIS_COLOURS`. Returns ((verts (1,P,3), faces (F,3) local, uv (M,2),
    faces_uv (F,3)), swatch tile (S,S,3) float32 at S = ``tile_size``)."""
    iris = np.asarray(IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))]) * rng.uniform(0.8, 1.2)
    head = SimpleNamespace(vertices=skin[0].numpy(), neutral=model(id_coeffs, None)[0].numpy(), exp_basis=None,
                           faces=model.faces.cpu().numpy())  # the mouth corrective reads the skin's faces
    attach_parts(head, model, id_coeffs, exp_coeffs, colors={"iris": tuple(np.clip(iris, 0, 1))})
    verts, faces, uv, faces_uv = preview_parts(head, tile)
    mesh = (torch.from_numpy(verts)[None], torch.from_numpy(faces), torch.from_numpy(uv), torch.from_numpy(faces_uv))
    return mesh, swatch_tile(head, tile_size)


def scalp_faces(model, verts: torch.Tensor, hairline_mm: float) -> torch.Tensor:
    """(F,) bool: the skin triangles under hair. verts (V,3) mm, the head in model space.

    Outside the narrow face (``model.region`` 0), a triangle is hair when its centroid is above a
    hairline that runs ``hairline_mm`` above the brows (landmarks 17–26) at the face's front
    (the jaw's z, landmarks 0 and 16) and falls linearly to the mouth's height 80 mm behind it
    (the nape)."""
    lm = verts[model.landmarks68]
    brow_y = float(lm[17:27, 1].max())
    mouth_y = float(lm[48:68, 1].mean())
    front_z = float(lm[[0, 16], 2].mean())
    c = verts[model.faces].mean(1)  # (F,3)
    back = ((front_z - c[:, 2]) / 80.0).clamp(0.0, 1.0)
    hairline = (brow_y + hairline_mm) * (1.0 - back) + mouth_y * back
    narrow = (model.region[model.faces] == 0).any(1)
    return (c[:, 1] > hairline) & ~narrow


def hair_tile(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 hair colour from :data:`HAIR_COLOURS` with vertical strands
    (noise fine along u, coarse along v) of ±25 %."""
    colour = np.asarray(HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]) * rng.uniform(0.85, 1.15)
    strands = zoom(rng.normal(0.0, 1.0, (6, 96)), (size / 6, size / 96), order=1, mode="nearest")[:size, :size]
    return np.clip(colour * (1.0 + 0.25 * np.clip(strands, -2, 2))[..., None], 0.0, 1.0).astype(np.float32)


def hair_uv(verts: torch.Tensor, tile: int) -> torch.Tensor:
    """Per-vertex UVs (V,2) into the hair tile starting at u = ``tile``: the head's front view
    (x, y) scaled into the tile. verts (V,3) mm."""
    xy = verts[:, :2]
    lo, span = xy.min(0).values, float((xy.max(0).values - xy.min(0).values).max())
    return torch.cat([tile + 0.01 + 0.98 * (xy[:, :1] - lo[0]) / span, 0.01 + 0.98 * (xy[:, 1:] - lo[1]) / span], 1)


def perspective_pose(landmarks: torch.Tensor, angles: list[float], size: int, face_fraction: float,
                     focal_35mm: float, shift_px: np.ndarray) -> torch.Tensor:
    """A perspective pose (1,7) (``backend.camera``: f pixels, t mm) for a ``size``² image whose
    lens is ``focal_35mm`` (35-mm equivalent over the image width), at the distance where the
    landmarks (68,3) mm span ``face_fraction`` of the image, their centroid ``shift_px`` (2,)
    pixels off the image centre (x right, y up). angles: (rx, ry, rz) radians."""
    f = focal_35mm / FRAME_MM * size
    R = euler_to_rotation(torch.tensor(angles, dtype=torch.float32))
    lm = landmarks.float()
    extent = float((lm.max(0).values - lm.min(0).values)[:2].max())  # mm
    distance = f * extent / (face_fraction * size)  # mm from the camera to the face's centroid
    m = (lm @ R.T).mean(0)
    t = torch.stack([-m[0] + float(shift_px[0]) * distance / f, -m[1] + float(shift_px[1]) * distance / f,
                     -m[2] - torch.tensor(distance)])
    return torch.cat([torch.tensor([f]), torch.tensor(angles, dtype=torch.float32), t.float()])[None]


@dataclass(frozen=True)
class Lights:
    """A scene's light in camera space (+Z towards the camera): an ambient environment of
    radiance ``ambient`` (3,) RGB and distant lights ``suns``, each (direction (3,) towards the
    light, any length; RGB strength (3,): the shading of a white surface facing it)."""

    ambient: tuple[float, float, float]
    suns: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]

    def sh(self) -> torch.Tensor:
        """The same light as SH coefficients (1,27) for ``backend.render``."""
        sh = sh_ambient(torch.tensor(self.ambient, dtype=torch.float32))
        for direction, rgb in self.suns:
            sh = sh + sh_directional(torch.tensor([direction], dtype=torch.float32), torch.tensor(rgb, dtype=torch.float32))
        return sh


def random_lights(rng: np.random.Generator, ambient: tuple[float, float], directional: tuple[float, float],
                  colour: float, second: bool) -> Lights:
    """A coloured ambient term, a key light from the camera's hemisphere of strength in
    ``directional`` and, with ``second``, a second light from anywhere (a fill, a rim from
    behind) of 20–70 % of the key's strength. Each light's colour is a warm/cool tint (red
    ×(1+a), blue ×(1−a), a uniform in ±``colour``)."""
    def tint() -> torch.Tensor:  # float32, as the SH light is
        a = rng.uniform(-colour, colour)
        return torch.tensor([1.0 + a, 1.0, 1.0 - a], dtype=torch.float32)

    def rgb(t: torch.Tensor) -> tuple[float, float, float]:
        return tuple(float(x) for x in t)

    key_dir = (rng.uniform(-1, 1), rng.uniform(-0.5, 1), rng.uniform(0.3, 1.0))
    key = rng.uniform(*directional)
    amb = rng.uniform(*ambient) * tint()
    suns = [(key_dir, rgb(key * tint()))]
    if second:
        suns.append((tuple(float(x) for x in rng.normal(0.0, 1.0, 3)), rgb(key * rng.uniform(0.2, 0.7) * tint())))
    return Lights(rgb(amb), tuple(suns))


def busy_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float32 in [0,1]: a random tinted grey with a linear gradient and smooth
    blotches (a room, not a studio's grey)."""
    base = rng.uniform(0.15, 0.85) + rng.uniform(-0.15, 0.15, 3)  # a grey level, tinted
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))[..., None] * rng.uniform(-0.4, 0.4, 3)
    blotch = zoom(rng.uniform(-1, 1, (5, 5, 3)), (size / 5, size / 5, 1), order=1, mode="nearest")[:size, :size] * 0.12
    return np.clip(base + ramp + blotch, 0.0, 1.0).astype(np.float32)

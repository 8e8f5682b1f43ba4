"""One random head of the synthetic suite photographed from several yaws (front + sides), with the
truth a 2-D annotator would mark in each photo: the multi-view counterpart of
:func:`evaluation.synthetic.make_face`.

Letters: V views (one per yaw), N mesh vertices, S×S photo pixels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from backend.camera import Camera, project
from backend.fit.contour import contour_candidates, select_contour
from backend.lighting import sh_directional

from .synthetic import SyntheticFace, SyntheticSettings, make_face, render_face

__all__ = ["HeadViews", "make_head_views"]


@dataclass
class HeadViews:
    """One head in V photos.

    - ``face``: the head as :func:`~evaluation.synthetic.make_face` drew it (``vertices`` (N,3) mm
      the truth every reconstruction is scored against; its ``image`` is not one of the views).
    - ``images``: V (S,S,3) uint8 RGB photos; ``yaws_deg`` their yaw (ry, degrees);
    - ``contour68``: V (68,2) photo px, the model's landmarks with the jaw on the silhouette (what
      a 2-D annotator marks and the fit defines); ``poses`` (V,7) the true orthographic poses.
    """

    face: SyntheticFace
    images: list[np.ndarray]
    yaws_deg: tuple[float, ...]
    contour68: list[np.ndarray]
    poses: np.ndarray


def make_head_views(
    model, rng: np.random.Generator, yaws_deg: tuple[float, ...] = (-50.0, 0.0, 50.0),
    settings: SyntheticSettings | None = None,
) -> HeadViews:
    """Draw one head (identity, expression, albedo, pitch/roll, background: ``make_face`` with
    ``settings``, its yaw drawn within ±``yaw_max_deg``, default 0) and render it at each of
    ``yaws_deg`` under its own directional light (one random direction per view from ``rng``,
    the head's ambient and strength), the landmarks centred with ``make_face``'s jitter.
    Deterministic for ``rng``'s state."""
    s = settings or SyntheticSettings(yaw_max_deg=0.0, size=320, face_fraction=0.5)
    with torch.no_grad():
        face = make_face(model, rng, s)
        verts = torch.from_numpy(face.vertices)[None].float()  # (1,N,3) mm
        camera = Camera(s.size, s.size, "orthographic")
        rows = contour_candidates(model.mean, model.landmarks68, model.face_vertex_mask)
        bg = (float(face.image[0, 0, 0]) / 255.0,) * 3  # make_face's background (uniform grey)
        images, contours, poses = [], [], []
        for yaw in yaws_deg:
            pose = torch.from_numpy(face.pose).float()[None].clone()  # (1,7)
            pose[0, 2] = math.radians(yaw)
            pose[0, 4:6] = 0.0
            lm = verts[:, model.landmarks68]
            centre = project(lm, pose, camera)[0, :, :2].mean(0)
            shift = rng.uniform(-0.05, 0.05, 2) * s.size
            pose[0, 4] = -(float(centre[0]) - (s.size - 1) / 2) + shift[0]
            pose[0, 5] = (float(centre[1]) - (s.size - 1) / 2) + shift[1]
            direction = np.array([rng.uniform(-1, 1), rng.uniform(-0.5, 1), rng.uniform(0.3, 1.0)])
            sh = sh_directional(torch.tensor(direction[None], dtype=torch.float32), rng.uniform(*s.directional),
                                rng.uniform(*s.ambient))
            image, _ = render_face(model, verts, pose, sh, face.albedo, s.size, bg)
            screen = project(verts, pose, camera)[..., :2]  # (1,N,2)
            contour = screen[0, model.landmarks68].numpy().astype(np.float64)
            contour[:17] = screen[0, select_contour(screen, rows)[0]].numpy()
            images.append(image)
            contours.append(contour)
            poses.append(pose[0].numpy())
    return HeadViews(face=face, images=images, yaws_deg=tuple(yaws_deg), contour68=contours, poses=np.stack(poses))


"""Preview images of a :class:`~backend.head.Head`: input | render | overlay | shaded side views."""
from __future__ import annotations

import math

import numpy as np
import torch

from .align import warp_to_crop
from .camera import Camera, project
from .fit.pose_init import fit_orthographic_pose
from .head import Head, ViewResult
from .lighting import sh_ambient, sh_directional
from .preview import compose_panels, draw_landmarks
from .render import RenderSettings, render

PANEL = 320  # preview panel size, pixels


def pose_in_window(verts: torch.Tensor, view: ViewResult, window_from_image: np.ndarray, size: int) -> torch.Tensor:
    """The view's orthographic pose re-expressed in a ``size``² window of the photo given by the
    similarity ``window_from_image`` (2,3). verts (1,N,3) mm. Returns (1,7) float32."""
    w, h = view.image_size
    pose = torch.from_numpy(np.asarray(view.pose, np.float64))[None]
    sub = verts[:, :: max(1, verts.shape[1] // 2000)].double()
    xy = project(sub, pose, Camera(w, h))[0, :, :2].numpy()
    xy_win = xy @ window_from_image[:, :2].T + window_from_image[:, 2]
    return fit_orthographic_pose(sub, torch.from_numpy(xy_win)[None], Camera(size, size)).float()


def face_window(view: ViewResult, size: int = PANEL, margin: float = 1.9) -> np.ndarray:
    """Similarity (2,3) mapping the photo onto a ``size``² window centred on the face box."""
    x0, y0, x1, y1 = np.asarray(view.face_box if view.face_box is not None else _box(view.landmarks68), np.float64)
    side = max(x1 - x0, y1 - y0) * margin
    s = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[s, 0, (size - 1) / 2 - s * cx], [0, s, (size - 1) / 2 - s * cy]], np.float64)


def _box(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([pts.min(0), pts.max(0)])


def _to_u8(img: torch.Tensor) -> np.ndarray:
    return (img.clamp(0, 1).detach().cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _grey_light() -> torch.Tensor:
    return sh_directional(torch.tensor([[0.35, 0.45, 1.0]]), intensity=0.75, ambient=0.35)


def render_preview(head: Head, view_index: int = 0) -> np.ndarray:
    """input | render | overlay | shaded geometry (frontal) | shaded geometry (side) for one view.

    The geometry panels show the detailed (dense) mesh when the head has one, in the view's
    pose and from 70° to the side. Returns (PANEL, 5·PANEL, 3) uint8. The photo comes from
    ``view.image`` (required).
    """
    view = head.views[view_index]
    if view.image is None:
        raise ValueError("render_preview needs the photo in view.image")
    verts = torch.from_numpy(head.vertices)[None].float()
    if view_index > 0 and head.exp_basis is not None:
        verts = torch.from_numpy(head.neutral + np.einsum("k,kvc->vc", view.exp, head.exp_basis))[None].float()
    faces = torch.from_numpy(head.faces).long()
    M = face_window(view)
    photo = warp_to_crop(view.image, M, PANEL)  # float32 in [0,1]
    photo_t = torch.from_numpy(photo)[None]
    pose = pose_in_window(verts, view, M, PANEL)
    cam = Camera(PANEL, PANEL)
    sh = torch.from_numpy(view.sh)[None].float()
    settings = RenderSettings(u_range=(0.0, float(head.uv_tiles)))
    with torch.no_grad():
        if head.albedo is not None:
            rend = render(verts, faces, pose, cam, sh, texture=torch.from_numpy(head.albedo)[None].float(),
                          uv=torch.from_numpy(head.uv).float(), faces_uv=torch.from_numpy(head.faces_uv).long(), settings=settings)
        else:
            rend = render(verts, faces, pose, cam, sh, settings=settings)
        a = rend.alpha[..., None]
        textured = rend.image * a + photo_t * (1 - a)
        shaded = render(verts, faces, pose, cam, _grey_light(), settings=settings)
        overlay = photo_t * (1 - 0.55 * shaded.alpha[..., None]) + shaded.image * 0.55 * shaded.alpha[..., None]
        side_panels = []
        if head.dense_vertices is not None:
            geo = torch.from_numpy(head.dense_vertices)[None].float()
            geo_faces = torch.from_numpy(head.dense_faces).long()
        else:
            geo, geo_faces = verts, faces
        for yaw in (None, math.radians(70)):
            if yaw is None:
                geo_pose = pose
            else:
                geo_pose = torch.tensor([[PANEL / 260.0, 0.0, yaw, 0.0, 0.0, 10.0 * PANEL / 260.0, 0.0]])
            side = render(geo, geo_faces, geo_pose, cam, _grey_light(), settings=settings)
            bg = torch.full_like(side.image, 0.18)
            side_panels.append(_to_u8((side.image * side.alpha[..., None] + bg * (1 - side.alpha[..., None]))[0]))
    over = _to_u8(overlay[0])
    to_win = lambda p: p @ M[:, :2].T + M[:, 2]  # noqa: E731
    over = draw_landmarks(over, to_win(view.detected68), (0, 255, 0), 2)
    over = draw_landmarks(over, to_win(view.landmarks68), (255, 40, 40), 2)
    return compose_panels(
        [_to_u8(photo_t[0]), _to_u8(textured[0]), over] + side_panels,
        ["input", "render", "overlay (green: detected, red: fitted)",
         "detailed geometry" if head.dense_vertices is not None else "geometry", "side"],
    )

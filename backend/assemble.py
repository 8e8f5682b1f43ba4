"""Head assembly: the fits packed into a :class:`~backend.head.Head`, poses re-expressed in the
original photos' pixels, and the detail stage's maps and dense mesh added to it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from .align import CROP_SIZE, points_to_image
from .camera import Camera, project
from .detail import tangent_normal_map
from .facemodel import FaceModel
from .fit.coarse import CoarseFitResult
from .fit.detail import DetailFitResult
from .fit.pose_init import fit_orthographic_pose
from .head import Head, ViewResult
from .detect.iris import detect_irises, iris_corners
from .gaze import best_view, estimate_gaze
from .head_parts import attach_parts, eye_frame, model_eyeballs
from .lens import perspective_in_photo
from .parts_texture import eye_colours, part_colours
from .prepare import PreparedView

__all__ = ["image_frame_pose", "assemble_head", "with_detail"]


def image_frame_pose(verts: torch.Tensor, pose_crop: torch.Tensor, view: PreparedView) -> torch.Tensor:
    """Re-express a crop-frame orthographic pose in original-photo pixels (exact: the crop is a
    similarity of the photo). verts (1,N,3) mm; pose_crop (1,7). Returns (1,7)."""
    crop_xy = project(verts, pose_crop, Camera(CROP_SIZE, CROP_SIZE))[0, :, :2].double().cpu().numpy()
    img_xy = points_to_image(crop_xy, view.image_from_crop)
    h, w = view.image.shape[:2]
    sub = verts[0, :: max(1, verts.shape[1] // 2000)].double().cpu()
    img_sub = torch.from_numpy(img_xy[:: max(1, verts.shape[1] // 2000)])
    pose = fit_orthographic_pose(sub[None], img_sub[None], Camera(w, h))
    return pose.to(pose_crop.dtype)


def assemble_head(
    model: FaceModel, fit: CoarseFitResult, views: list[PreparedView], mode: str, quality: str,
    albedo: np.ndarray | None,
) -> Head:
    """Pack the fit into a :class:`Head` with per-view results in original-photo pixels (``mode`` and
    ``quality``: the reconstruction's, recorded in the head)."""
    np32 = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    neutral = model(fit.id, None)
    fixed68 = project(fit.verts[:, model.landmarks68], fit.pose, fit.crop_camera(CROP_SIZE))[..., :2]  # (V,68,2) crop px
    results = []
    for i, view in enumerate(views):
        cam = fit.crop_camera(CROP_SIZE).select(i)
        lens = cam.focal is not None and bool(torch.isfinite(cam.focal).all())
        if lens:  # through a lens: the photo's perspective camera (exact)
            pose_img = perspective_in_photo(fit.pose[i : i + 1], cam, view.image_from_crop).to(fit.pose.dtype)
        else:
            pose_img = image_frame_pose(fit.verts[i : i + 1], fit.pose[i : i + 1], view)
        results.append(
            ViewResult(
                name=view.name, image_size=(view.image.shape[1], view.image.shape[0]),
                pose=np32(pose_img[0]), sh=np32(fit.sh[i]), exp=np32(fit.exp[i]),
                landmarks68=points_to_image(fit.landmarks[i].double().cpu().numpy(), view.image_from_crop).astype(np.float32),
                detected68=view.detected68.astype(np.float32), projection="perspective" if lens else "orthographic",
                face_box=view.face_box.astype(np.float32), crop_from_image=view.crop_from_image.astype(np.float32),
                image=view.image, label=view.label, detector=view.detector,
                landmarks68_3d=points_to_image(fixed68[i].double().cpu().numpy(), view.image_from_crop).astype(np.float32),
                focal_35mm=float(view.focal_35mm) if lens else None, focal_source=view.focal_source,
                face_detector=view.face_detector, face_score=view.face_score, presence=view.presence,
            )
        )
    head = Head(
        model_name=model.name, vertices=np32(fit.verts[0]), neutral=np32(neutral[0]),
        faces=model.faces.cpu().numpy().astype(np.int32), uv=np32(model.uv),
        faces_uv=model.faces_uv.cpu().numpy().astype(np.int32), id_coeffs=np32(fit.id[0]),
        exp_coeffs=np32(fit.exp[0]), exp_names=list(model.exp_names), exp_basis=np32(model.exp_basis),
        uv_tiles=model.uv_tiles, albedo=albedo, tex_coeffs=None if fit.tex is None else np32(fit.tex[0]),
        views=results, mode=mode, quality=quality,
    )
    # eyes, sockets, teeth when the model has them; iris and sclera colours, the gaze and the iris's
    # size (MediaPipe's Iris model, when installed) from the photo whose eyes are most open and seen
    # (the first on ties; ICT's eyeballs do not move with the expression, so one set of eyeball
    # frames serves every view), the mouth's colours from the
    # photo whose mouth is most open, all following the photos' colour balance (part_colours)
    colours = gaze = None
    if model.has_parts:
        eyes = {name: eye_frame(points) for name, points in model_eyeballs(model, fit.id[:1], fit.exp[:1]).items()}
        found = [estimate_gaze(view.image, view.detected68, res.landmarks68, res.pose,
                               Camera(*res.image_size, res.projection), eyes,
                               detect_irises(view.image, iris_corners(view.detected68, view.dense)))
                 for view, res in zip(views, results)]
        best = best_view(found)
        gaze, iris = found[best].angles, found[best]
        colours = eye_colours(views[best].image, views[best].detected68, np32(fit.sh[best]),
                              irises=(iris.iris[iris.seen], iris.radius[iris.seen]))
        colours = part_colours(colours, [v.image for v in views], [v.detected68 for v in views], np32(fit.sh))
    attach_parts(head, model, fit.id[:1], fit.exp[:1], colours, gaze=gaze,
                 iris_radius=None if gaze is None else found[best].iris_mm)
    return head


def _tile_pad(face_tile: np.ndarray, tiles: int, fill) -> np.ndarray:
    """Place a face-tile map (S,S,...) at the left of a ``tiles``-wide layout (S,S·tiles,...)."""
    if tiles == 1:
        return face_tile
    pad = np.empty((face_tile.shape[0], face_tile.shape[1] * (tiles - 1)) + face_tile.shape[2:], face_tile.dtype)
    pad[...] = fill
    return np.concatenate([face_tile, pad], 1)


def with_detail(head: Head, detail: DetailFitResult, tiles: int) -> Head:
    """A copy of ``head`` with the detail stage: displacement (mm) and tangent-space normal map
    over the whole UV layout (flat outside the face tile), the dense mesh of the first view and
    the photometric metrics. ``head`` itself is not modified."""
    disp = detail.displacement[0, 0].float().cpu().numpy()
    normal = tangent_normal_map(detail.surface, detail.layout.valid)[0].float().cpu().numpy()
    metrics = dict(head.metrics)
    metrics["pixel_loss_coarse"] = float(np.mean(detail.pixel_coarse))
    metrics["pixel_loss_detail"] = float(np.mean(detail.pixel_detail))
    metrics["pixel_loss_skin_coarse"] = float(np.mean(detail.pixel_skin_coarse))
    metrics["pixel_loss_skin_detail"] = float(np.mean(detail.pixel_skin_detail))
    if detail.pixel_albedo_only:
        metrics["pixel_loss_albedo_only"] = float(np.mean(detail.pixel_albedo_only))
    if detail.pixel_rest_coarse:  # the face mask off the skin: brows, lips, hair, glasses
        metrics["pixel_loss_rest_coarse"] = float(np.mean(detail.pixel_rest_coarse))
        metrics["pixel_loss_rest_detail"] = float(np.mean(detail.pixel_rest_detail))
        metrics["rest_error_share_coarse"] = float(np.mean(detail.rest_share_coarse))
    return replace(
        head,
        displacement=_tile_pad(disp.astype(np.float32), tiles, 0.0),
        displacement_scale_mm=float(max(1.0, np.abs(disp).max())),
        normal_map=_tile_pad(normal.astype(np.float32), tiles, np.array([0.5, 0.5, 1.0], np.float32)),
        dense_vertices=detail.surface.dense_verts[0].float().cpu().numpy(),
        dense_faces=detail.topology.faces.cpu().numpy().astype(np.int32),
        dense_uv=detail.topology.uv.cpu().numpy().astype(np.float32),
        metrics=metrics,
        timings=dict(head.timings),
        warnings=list(head.warnings),
    )

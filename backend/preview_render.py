"""Preview images of a :class:`~backend.head.Head`: input | render | overlay | shaded side views."""
from __future__ import annotations

import math

import numpy as np
import torch

from .align import warp_to_crop
from .camera import Camera, project
from .fit.pose_init import fit_orthographic_pose
from .geometry import detailed_head_mesh
from .head import Head, ViewResult
from .head_parts import has_parts, preview_parts, swatch_tile
from .lens import lens_in_window
from .lighting import sh_directional, vertex_normals
from .preview import compose_panels, draw_landmarks
from .render import RenderSettings, rasterize_uv, render
from .render.rasterize import visibility
from .texture import coverage_image

PANEL = 320  # preview panel size, pixels


def pose_in_window(verts: torch.Tensor, view: ViewResult, window_from_image: np.ndarray, size: int) -> torch.Tensor:
    """The view's orthographic pose re-expressed in a ``size``² window of the photo given by the
    similarity ``window_from_image`` (2,3). verts (1,N,3) mm. Returns (1,7) float32 (a
    perspective view: the pose of :func:`camera_in_window`'s camera)."""
    return camera_in_window(verts, view, window_from_image, size)[0]


def camera_in_window(verts: torch.Tensor, view: ViewResult, window_from_image: np.ndarray,
                     size: int) -> tuple[torch.Tensor, Camera]:
    """The view's pose (1,7) float32 and camera in a ``size``² window of the photo (similarity
    ``window_from_image`` (2,3)): orthographic, or a perspective view's lens (:mod:`backend.lens`)."""
    if view.projection == "perspective":
        return lens_in_window(torch.from_numpy(np.asarray(view.pose, np.float64))[None], view.image_size,
                              window_from_image, size)
    return _ortho_in_window(verts, view, window_from_image, size), Camera(size, size)


def _ortho_in_window(verts: torch.Tensor, view: ViewResult, window_from_image: np.ndarray, size: int) -> torch.Tensor:
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


def grey_light() -> torch.Tensor:
    """(1,27) the camera-space light of the grey geometry previews (from the upper right front)."""
    return sh_directional(torch.tensor([[0.35, 0.45, 1.0]]), intensity=0.75, ambient=0.35)


def render_preview(head: Head, view_index: int = 0) -> np.ndarray:
    """input | render | overlay | shaded geometry (frontal) | shaded geometry (side) for one view.

    The render (textured, in the view's fitted light, over the photo) and the geometry panels
    show the detailed whole head (``head_detailed.obj``'s mesh) when the head has a displacement
    map and the view shares the first view's expression; the overlay shows the coarse fit, whose
    landmarks it draws. Geometry: in the view's pose and from 70° to the side. Returns
    (PANEL, 5·PANEL, 3) uint8. The photo comes from ``view.image`` (required).
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
    pose, cam = camera_in_window(verts, view, M, PANEL)
    sh = torch.from_numpy(view.sh)[None].float()
    albedo, u_max = preview_texture(head)
    settings = RenderSettings(u_range=(0.0, u_max))
    # the detailed head has the first view's expression: the other views show it when they share it
    detailed = head.displacement is not None and (
        view_index == 0 or np.allclose(np.asarray(view.exp), np.asarray(head.views[0].exp), atol=1e-6))
    with torch.no_grad():
        if detailed:
            mesh = head_mesh(head, detailed)
        else:
            v, f, uv, fuv = _with_parts(head, verts[0].numpy(), head.faces, np.asarray(head.uv, np.float32), head.faces_uv)
            mesh = (torch.from_numpy(v)[None], torch.from_numpy(f), torch.from_numpy(uv), torch.from_numpy(fuv))
        geo, geo_faces, uv, faces_uv = mesh
        # the textured and the grey render in the view's pose share the rasteriser's pass 1, and all
        # three the mesh's normals (model space; render rotates them into each pose)
        geo_n = vertex_normals(geo, geo_faces)
        vis = visibility(project(geo, pose, cam), geo_faces, PANEL, PANEL, settings.raster_settings(cam))
        if albedo is not None:  # the result: the detailed head, textured, in the view's light
            rend = render(geo, geo_faces, pose, cam, sh, texture=albedo[None].float(),
                          uv=uv, faces_uv=faces_uv, settings=settings, visible=vis, normals=geo_n)
        else:
            rend = render(geo, geo_faces, pose, cam, sh, settings=settings, visible=vis, normals=geo_n)
        a = rend.alpha[..., None]
        textured = rend.image * a + photo_t * (1 - a)
        shaded = render(verts, faces, pose, cam, grey_light(), settings=settings)
        overlay = photo_t * (1 - 0.55 * shaded.alpha[..., None]) + shaded.image * 0.55 * shaded.alpha[..., None]
        side_panels = []  # the same mesh: what head_detailed.obj holds, when detailed
        for yaw in (None, math.radians(70)):
            if yaw is None:
                geo_pose = pose
            else:
                geo_pose = torch.tensor([[PANEL / 260.0, 0.0, yaw, 0.0, 0.0, 10.0 * PANEL / 260.0, 0.0]])  # a close-up
            side = render(geo, geo_faces, geo_pose, cam if yaw is None else Camera(PANEL, PANEL), grey_light(),
                          settings=settings, normals=geo_n,
                          visible=vis if yaw is None else None)
            bg = torch.full_like(side.image, 0.18)
            side_panels.append(_to_u8((side.image * side.alpha[..., None] + bg * (1 - side.alpha[..., None]))[0]))
    over = _to_u8(overlay[0])
    to_win = lambda p: p @ M[:, :2].T + M[:, 2]  # noqa: E731
    over = draw_landmarks(over, to_win(view.detected68), (0, 255, 0), 2)
    over = draw_landmarks(over, to_win(view.landmarks68), (255, 40, 40), 2)
    return compose_panels(
        [_to_u8(photo_t[0]), _to_u8(textured[0]), over] + side_panels,
        ["input", "render", "overlay (green: detected, red: fitted)",
         "detailed geometry" if detailed else "geometry", "side"],
    )


# -- turntable and UV-map previews (multi-view runs) ---------------------------------------------
TURNTABLE_YAWS = (-90.0, -45.0, 0.0, 45.0, 90.0)  # degrees, ry of backend.camera (+: face turns to image right)
BACKGROUND = 0.18  # grey level behind turntable renders


def head_mesh(head: Head, detailed: bool = True, shade_eyes: bool = True
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The head as one renderable mesh in the model's UV tile layout.

    With ``detailed`` and a displacement map: the whole head with its detail in the geometry
    (:func:`backend.geometry.detailed_head_mesh`, the mesh of ``head_detailed.obj``: closed,
    so it renders without cracks); otherwise the coarse mesh. ``shade_eyes``: the eyeballs
    shaded by the lids (:func:`backend.head_parts.preview_parts`; off where only the vertices'
    extent matters). Returns (verts (1,N,3) float32 mm,
    faces (F,3) long, uv (T,2) float32, faces_uv (F,3) long), UVs over ``u ∈ [0, uv_tiles]``.
    """
    if detailed and head.displacement is not None:
        mesh = detailed_head_mesh(head)
        skin = (mesh.verts.astype(np.float32), mesh.faces, mesh.uv.astype(np.float32), mesh.faces_uv)
    else:
        skin = (np.asarray(head.vertices, np.float32), np.asarray(head.faces, np.int64),
                np.asarray(head.uv, np.float32), np.asarray(head.faces_uv, np.int64))
    v, f, uv, fuv = _with_parts(head, *skin, shade_eyes=shade_eyes)
    return (torch.from_numpy(v)[None], torch.from_numpy(f), torch.from_numpy(uv), torch.from_numpy(fuv))


def _with_parts(head: Head, verts: np.ndarray, faces: np.ndarray, uv: np.ndarray, faces_uv: np.ndarray,
                shade_eyes: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The skin mesh with the head's parts (eyes, teeth, ...) appended, their UVs in the swatch
    tile after the skin's (:func:`preview_texture`), the eyeballs shaded by the lids unless
    ``shade_eyes`` is False; unchanged without parts."""
    pv, pf, puv, pfuv = preview_parts(head, head.uv_tiles, shade_eyes=shade_eyes)
    if len(pf) == 0:
        return verts, np.asarray(faces, np.int64), uv, np.asarray(faces_uv, np.int64)
    return (np.concatenate([verts, pv]), np.concatenate([faces, pf + len(verts)]).astype(np.int64),
            np.concatenate([uv, puv]), np.concatenate([faces_uv, pfuv + len(uv)]).astype(np.int64))


def preview_texture(head: Head) -> tuple[torch.Tensor | None, float]:
    """The albedo (H, W, 3) with the parts' swatch tile appended when the head has parts, and
    the u range it spans (``uv_tiles``, + 1 with parts). (None, uv_tiles) without an albedo."""
    if head.albedo is None:
        return None, float(head.uv_tiles)
    albedo = np.asarray(head.albedo, np.float32)
    if not has_parts(head):
        return torch.from_numpy(albedo), float(head.uv_tiles)
    return torch.from_numpy(np.concatenate([albedo, swatch_tile(head, albedo.shape[0])], 1)), float(head.uv_tiles + 1)


def render_head(
    head: Head,
    pose: torch.Tensor,
    camera: Camera,
    sh: torch.Tensor,
    textured: bool = True,
    background: tuple[float, float, float] = (BACKGROUND,) * 3,
    detailed: bool = True,
    mesh: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    visible: torch.Tensor | None = None,
    normals: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the head (detailed when it has a displacement map and ``detailed``) in B poses.

    pose (B,7), sh (B,27) camera-space light; ``textured``: ``head.albedo`` (grey 0.7 when the
    head has none or when False); ``mesh``: :func:`head_mesh`'s result when the caller has it
    already; ``visible``: the rasteriser's pass 1 for this mesh, poses and camera
    (:func:`head_visibility`), when another render of them computed it; ``normals``: the mesh's
    (1,N,3) model-space vertex normals (default: each pose's own, the same up to rounding), so
    several poses and renders share one computation. Returns (image (B,H,W,3) float32 in [0,1]
    over ``background``, mask (B,H,W) bool).
    """
    B = pose.shape[0]
    tex, u_max = preview_texture(head)
    settings = RenderSettings(u_range=(0.0, u_max), background=background)
    v, f, uv, fuv = mesh if mesh is not None else head_mesh(head, detailed)
    with torch.no_grad():  # the mesh's own (area-weighted) normals: render's default
        if textured and tex is not None:
            out = render(v.expand(B, -1, -1), f, pose, camera, sh, texture=tex, uv=uv, faces_uv=fuv, settings=settings,
                         visible=visible, normals=normals)
        else:
            out = render(v.expand(B, -1, -1), f, pose, camera, sh, settings=settings, visible=visible, normals=normals)
    return out.image, out.mask


def head_visibility(mesh: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], pose: torch.Tensor,
                    camera: Camera) -> torch.Tensor:
    """The rasteriser's pass 1 (:func:`backend.render.rasterize.visibility`) of :func:`head_mesh`'s
    ``mesh`` in poses (B,7): (B·H·W,) int64, for :func:`render_head`'s ``visible``. Renders of
    the same mesh and poses that differ only in texture or light share it: the same pixels bit
    for bit, without the costliest part of rasterising a dense mesh twice."""
    v, f = mesh[0], mesh[1]
    with torch.no_grad():
        return visibility(project(v.expand(pose.shape[0], -1, -1), pose, camera), f, camera.height, camera.width,
                          RenderSettings().raster_settings(camera))


def turntable_poses(verts: torch.Tensor, yaws_deg: tuple[float, ...], size: int, fill: float = 0.9) -> torch.Tensor:
    """Orthographic poses (Y,7) showing ``verts`` (1,N,3) mm from each yaw (degrees), the
    bounding box centre at the image centre and the larger of its height and (rotated) width
    at ``fill`` of ``size`` pixels in every panel (one scale for all)."""
    lo, hi = verts[0].amin(0), verts[0].amax(0)
    centre = (lo + hi) / 2
    extent = float(torch.maximum(hi[1] - lo[1], torch.linalg.vector_norm((hi - lo)[[0, 2]])))
    f = fill * size / extent
    yaw = torch.tensor([math.radians(y) for y in yaws_deg], dtype=torch.float32)
    c, s = yaw.cos(), yaw.sin()
    pose = torch.zeros(len(yaws_deg), 7)
    pose[:, 0] = f
    pose[:, 2] = yaw
    pose[:, 4] = -f * (c * centre[0] + s * centre[2])  # camera x of the rotated centre → 0
    pose[:, 5] = -f * centre[1]
    return pose


def turntable_renders(
    head: Head, yaws_deg: tuple[float, ...] = TURNTABLE_YAWS, size: int = PANEL, textured: bool = True,
    mesh: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    visible: torch.Tensor | None = None,
    normals: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render the head from several yaws on a grey background (:func:`render_head`).

    ``textured``: ``head.albedo`` under a soft camera-fixed light (grey when the head has no
    albedo); otherwise the bare geometry under a grazing light. Both use the detailed mesh when
    present (``mesh``: :func:`head_mesh`'s, when the caller has it; ``visible``: its pass 1 in
    :func:`turntable_poses`' poses, :func:`head_visibility`; ``normals``: as :func:`render_head`'s). Returns (images (Y,size,size,3)
    uint8, masks (Y,size,size) bool).
    """
    Y = len(yaws_deg)
    pose = turntable_poses(head_mesh(head, detailed=False, shade_eyes=False)[0], yaws_deg, size)
    if textured:
        light = sh_directional(torch.tensor([[0.3, 0.35, 1.0]]).expand(Y, 3), intensity=0.55, ambient=0.6)
    else:
        light = grey_light().expand(Y, -1)
    image, mask = render_head(head, pose, Camera(size, size), light, textured=textured, mesh=mesh, visible=visible,
                              normals=normals)
    return _to_u8(image), mask.numpy()


def render_turntable(head: Head, yaws_deg: tuple[float, ...] = TURNTABLE_YAWS, size: int = PANEL) -> np.ndarray:
    """Turntable strip: the textured head (top row) and its shaded geometry, detailed when
    present (bottom row), from each yaw in ``yaws_deg`` (default −90°, −45°, 0°, +45°, +90°;
    +90° shows the subject's right side, face towards the image's right).
    Returns (2·size, Y·size, 3) uint8, PNG-ready."""
    mesh = head_mesh(head)  # built once for both rows, and so is the rasteriser's pass 1
    visible = head_visibility(mesh, turntable_poses(head_mesh(head, detailed=False, shade_eyes=False)[0], yaws_deg, size), Camera(size, size))
    with torch.no_grad():
        normals = vertex_normals(mesh[0], mesh[1])  # model space, rotated into each pose by render
    tex, _ = turntable_renders(head, yaws_deg, size, textured=True, mesh=mesh, visible=visible, normals=normals)
    geo, _ = turntable_renders(head, yaws_deg, size, textured=False, mesh=mesh, visible=visible, normals=normals)
    labels = [f"yaw {y:+.0f} deg" for y in yaws_deg]
    kind = "detailed geometry" if head.displacement is not None else "geometry"
    top = compose_panels(list(tex), [f"{lab}, textured" if i == 0 else lab for i, lab in enumerate(labels)])
    bottom = compose_panels(list(geo), [kind] + [""] * (len(yaws_deg) - 1))
    return np.concatenate([top, bottom], 0)


def diverging_colours(values: np.ndarray, limit: float) -> np.ndarray:
    """Blue (−limit) → white (0) → red (+limit) colour map of ``values`` (any shape, e.g. mm).
    Returns (..., 3) float32 in [0,1]; values beyond ±limit saturate."""
    stops = np.array([[0.02, 0.19, 0.38], [0.40, 0.65, 0.85], [0.97, 0.97, 0.97], [0.90, 0.45, 0.35],
                      [0.40, 0.0, 0.12]], np.float32)  # at −1, −½, 0, +½, +1
    t = (np.clip(np.asarray(values, np.float32) / max(float(limit), 1e-12), -1.0, 1.0) + 1.0) * 2.0  # [0,4]
    i = np.minimum(np.floor(t).astype(np.int64), 3)
    frac = (t - i)[..., None]
    return stops[i] * (1.0 - frac) + stops[i + 1] * frac


def render_uv_maps(head: Head, height: int = 256) -> np.ndarray:
    """Panel of the blended UV maps, each ``height`` × ``height``·tiles, in a 2×2 grid:
    albedo | displacement (blue −, red +, ±99th percentile mm in the label; dark grey where the
    detail stage has no data) / tangent normal map | per-view coverage
    (:func:`backend.texture.coverage_image` of ``head.view_weights``: red, green, blue ... per
    view, black unseen). Missing maps are dark grey with "n/a" in the label.
    Returns (2·height, 2·tiles·height, 3) uint8, PNG-ready."""
    tiles = head.uv_tiles
    blank = np.full((height, height * tiles, 3), 0.25, np.float32)
    albedo = blank if head.albedo is None else head.albedo
    if head.displacement is not None:
        d = np.asarray(head.displacement, np.float32)
        S = d.shape[0]
        frags = rasterize_uv(torch.from_numpy(head.uv).float(), torch.from_numpy(head.faces_uv).long(), S, S * tiles,
                             (0.0, float(tiles)))
        known = (frags.face_idx[0] >= 0).numpy()
        known[:, S:] = False  # the detail stage covers the face tile only
        limit = float(np.percentile(np.abs(d[known]), 99)) if known.any() else 1.0
        disp = np.where(known[..., None], diverging_colours(d, limit), 0.25)
        disp_label = f"displacement (+-{limit:.2f} mm)"
    else:
        disp, disp_label = blank, "displacement: n/a"
    normal = blank if head.normal_map is None else head.normal_map
    cover = blank if head.view_weights is None else coverage_image(head.view_weights)
    n_views = 0 if head.view_weights is None else head.view_weights.shape[0]
    top = compose_panels([albedo, disp], ["albedo" if head.albedo is not None else "albedo: n/a", disp_label], height)
    bottom = compose_panels(
        [normal, cover],
        ["normal map" if head.normal_map is not None else "normal map: n/a",
         f"coverage ({n_views} view{'s' if n_views > 1 else ''}: red, green, blue...)" if n_views else "coverage: n/a"],
        height,
    )
    return np.concatenate([top, bottom], 0)

"""The texture stage: photos de-lit into the UV layout, weighted, gain-equalised, blended, faded
into a fill colour, and the coverage measures. The product (:func:`delit_albedo`) and the
evaluation (``evaluation.multiview_real``) both de-light through :func:`delight_views`.

Per view (:func:`delight_views`): the texels some view can face are unwrapped from the photo
(:func:`backend.render.unwrap_image`), weighted by :func:`backend.blend.per_view_confidence`
(visibility × facing × distance to the silhouette × resolution [× a photo-space weight]), and
those some view has confidence in are divided by the view's SH shading (camera-space normals of
the mesh, or the detailed normals on the face tile). The albedo (:func:`delit_albedo`) then
down-weights non-skin colours outside the inner face, equalises the views' gains, blends them
with a Laplacian pyramid and, where no view sees the head (:func:`texture_opacity`), fades into
the face's mirror and a smooth continuation of the seen skin (:func:`complete_albedo`,
:mod:`backend.texture_fill`).

Letters: V views, H×W UV texels (W = H·tiles), T texels some view can face, T' of them with
confidence, Hi×Wi photo pixels, N vertices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as Fn

from .align import CROP_SIZE, inner_face_mask, warp_to_crop
from .blend import (
    ConfidenceSettings, equalize_views, facing_texels, multiband_blend, per_view_confidence, scatter_texels,
    silhouette_distance, smoothstep, texel_subset,
)
from .camera import Camera, euler_to_rotation, project, scale_pose, to_camera_space
from .detail import masked_lowpass
from .facemodel import FaceModel
from .geometry import array_digest
from .glasses import GLASSES_FILL, view_glasses_masks
from .hair_fill import hair_zone, remove_hair
from .layout_cache import layout_arrays
from .fit.coarse import CoarseFitResult
from .fit.detail import DetailFitResult
from .lighting import sh_shading, vertex_normals
from .occlusion import feature_mask, mirror_fill, mirror_texels, not_darker, occluded
from .prepare import PreparedView, hand_crop_mask, reframe
from .render import Fragments, Unwrapped, interpolate, rasterize, rasterize_uv, unwrap_image
from .side_hair import rim_fade, side_hair_mask, side_zone
from .skin import skin_weight
from .texture_fill import (
    FillLayout, FillSettings, fill_layout, harmonic_fill, mirror_complete, mirror_donor, mirror_reach, skin_colour,
    skin_tone,
)
from .uvmaps import texels_per_mm

__all__ = [
    "DelitViews", "DelitTexels", "delight_views", "delit_albedo", "complete_albedo", "texture_opacity", "FEATHER_TEXELS_512",
    "VIEW_COLOURS", "coverage_image", "face_region_mask", "face_region_coverage", "uv_face_coverage", "face_tile_mirror",
]

# width (Gaussian σ, texels of a 512² tile ≈ 0.57 mm on ICT's face tile) of the texture's edge feather
FEATHER_TEXELS_512 = 6.0
MIN_SHADING = 0.05  # SH shading floor of the de-lighting division
FILL_COLOUR = (0.62, 0.47, 0.40)  # texels no view sees, when no view sees anything either
PHOTO_RESAMPLE_PX = 512  # the albedo's photo re-sampling (px): finer than the face tile's texels across the face

# (normals (1,H,W,3) one view's camera-space UV normal map, view index) → the same with detail
NormalsHook = Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class DelitViews:
    """Per-view UV maps ready for :func:`backend.blend.multiband_blend`.

    - ``maps``: (V,H,W,3) photo colour / SH shading (delit albedo, clamped to [0,1]), 0 where no
      view has confidence;
    - ``weights``: (V,H,W) :func:`backend.blend.per_view_confidence`;
    - ``texture``: (V,H,W,3) the raw unwrapped photo colour (0 off the facing texels);
      ``shading``: (V,H,W,3), 0 where ``maps`` is.
    """

    maps: torch.Tensor
    weights: torch.Tensor
    texture: torch.Tensor
    shading: torch.Tensor


@dataclass(frozen=True)
class DelitTexels:
    """:func:`delight_views`'s result on the texels that matter (no gradients).

    - ``facing`` (T,): flat indices into H×W of the texels some view can face;
    - ``texels`` (T',): the subset some view has confidence in;
    - ``delit`` (V,T',3) in [0,1], ``shading`` (V,T',3), ``weight`` (V,T'), ``screen`` (V,T',2) the
      texel's photo pixel (pixel centres at integers);
    - ``texture`` (V,H,W,3) the unwrapped photo colour, ``weights`` (V,H,W) the confidence;
    - ``size``: (H, W);
    - ``cosine`` (V,T') the texel's facing cosine in each view (:attr:`backend.render.Unwrapped.cosine`).
    """

    facing: torch.Tensor
    texels: torch.Tensor
    delit: torch.Tensor
    shading: torch.Tensor
    weight: torch.Tensor
    screen: torch.Tensor
    texture: torch.Tensor
    weights: torch.Tensor
    size: tuple[int, int]
    cosine: torch.Tensor | None = None

    def maps(self) -> DelitViews:
        """The per-view results over the whole H×W layout."""
        H, W = self.size
        return DelitViews(maps=scatter_texels(self.delit, self.texels, H, W), weights=self.weights,
                          texture=self.texture, shading=scatter_texels(self.shading, self.texels, H, W))


def delight_views(
    images: torch.Tensor,
    verts: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    faces_uv: torch.Tensor,
    poses: torch.Tensor,
    camera: Camera,
    sh: torch.Tensor,
    height: int,
    width: int,
    u_range: tuple[float, float],
    *,
    image_weight: torch.Tensor | None = None,
    depth_jump_px: float = 4.0,
    settings: ConfidenceSettings | None = None,
    detail_normals: NormalsHook | None = None,
) -> DelitTexels:
    """Unwrap each photo into the UV layout, weigh each texel, divide by the view's SH shading.

    images (V,Hi,Wi,3) in [0,1] framed by ``camera`` (orthographic) and ``poses`` (V,7); verts
    (V,N,3) model mm (per-view expression); faces (F,3); uv (Tu,2) / faces_uv (F,3) the layout,
    rasterised at ``height``×``width`` over ``u_range``; sh (V,27). ``image_weight`` (V,Hw,Ww)
    optional photo-space weight sampled at the same normalised points (a face mask). The
    silhouette term uses the mesh's screen mask and its depth jumps (> ``depth_jump_px`` screen
    units). ``detail_normals`` replaces a view's camera-space normals (the face tile's detail).
    Returns :class:`DelitTexels`.
    """
    V, H, W = images.shape[0], height, width
    with torch.no_grad():
        screen_frags = rasterize(project(verts, poses, camera), faces, camera.height, camera.width)
        cam_normals = vertex_normals(to_camera_space(verts, poses, camera.projection), faces)  # (V,N,3)
        # unwrap the T texels some view can face (the rest of the head is invisible in every view)
        frags, facing = facing_texels(uv, faces_uv, faces, cam_normals, H, W, u_range)
        part = unwrap_image(images, verts, faces, poses, camera, frags, fragments=screen_frags)  # (V,1,T,...)
        un = Unwrapped(*(scatter_texels(x[:, 0], facing, H, W)  # (V,H,W,...): zero/False off the T texels
                         for x in (part.texture, part.visible, part.cosine, part.screen)))
        dist = silhouette_distance(screen_frags.mask, screen_frags.depth, depth_jump_px)
        weight = per_view_confidence(un, dist, settings, image_weight=image_weight)  # (V,H,W)

        # delight only the T' texels some view has confidence in: (V,T',...) from here on
        keep = (weight.flatten(1, 2).index_select(1, facing) > 0).any(0).nonzero().squeeze(1)
        used, sub = facing[keep], texel_subset(frags, keep)  # (T',) flat texels, their fragments

        def at_used(maps: torch.Tensor) -> torch.Tensor:  # (V,H,W,...) → (V,T',...)
            return maps.flatten(1, 2).index_select(1, used)

        normals = interpolate(cam_normals, sub.face_idx, sub.bary, faces)[:, 0]
        normals = Fn.normalize(normals, dim=-1, eps=1e-12)  # (V,T',3) camera space
        if detail_normals is not None:
            full = scatter_texels(normals, used, H, W)
            normals = at_used(torch.cat([detail_normals(full[i : i + 1], i) for i in range(V)]))
        shading = sh_shading(normals, sh).clamp_min(MIN_SHADING)
        delit = (at_used(un.texture) / shading).clamp(0.0, 1.0)  # (V,T',3)
    return DelitTexels(facing=facing, texels=used, delit=delit, shading=shading, weight=at_used(weight),
                       screen=at_used(un.screen), texture=un.texture, weights=weight, size=(H, W),
                       cosine=at_used(un.cosine))


def delit_albedo(
    model: FaceModel,
    fit: CoarseFitResult,
    views: list[PreparedView],
    resolution: int,
    device: torch.device,
    detail: DetailFitResult | None = None,
    occluders: bool = True,
    hair: bool = True,
    glasses: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """High-resolution UV albedo from the photos.

    Each view's face (re-cropped at 512² for resolution) is de-lit by :func:`delight_views`
    (with ``detail`` the face tile uses the detailed normals, so wrinkle shading is not baked in
    twice), the confidence weighted by the view's landmark face mask, so hair, hats and
    background never land on the head. Outside the inner face the confidence is multiplied by
    the photo's skin weight (:func:`backend.skin.skin_weight`: skin colour likelihood, connected
    to the face) and by a robust term that down-weights colours far from the view's median skin
    colour (a hat brim or hair on the forehead band), and by the view's weight in the coarse fit
    (``fit.view_weights``, :mod:`backend.fit.view_weights`: a photo the fit could not explain
    paints no more of the head than it shaped). Several views are gain-equalised on their
    overlap and blended with a Laplacian pyramid (no seams); texels no view sees are completed
    with a soft transition (:func:`texture_opacity`, :func:`complete_albedo`): the face's hidden
    half from its mirror, the rest of the head a continuation of the seen skin that tends to its
    median colour, so scalp and neck match the face. ``occluders``: inside the inner face, off the brows, eyes and lips, texels that
    are not skin while their mirror texel is lose their photo to the mirror's colour
    (:mod:`backend.occlusion`: a bottle, a sweater, a strand of hair in front of the face); a
    hand the palm detector found (:attr:`PreparedView.hands`, skin-coloured: no colour test sees
    it) loses its texels the same way, wherever it lies, and gives no colour to its mirror.
    ``hair``: above the brows, at the temples and along the face's upper rim, hair (not skin,
    or darker, brighter or of another hue than the local skin) takes the colour of the view's
    surrounding skin (:mod:`backend.hair_fill`: a fringe covers both halves, so no mirror helps).
    ``glasses``: in a view that wears glasses (:mod:`backend.glasses`), frames and glare around
    the eyes take the surrounding skin's colour the same way.

    Returns (albedo (R, R·tiles, 3) float32 in [0,1] top row v = 1, weights (V,R,R·tiles)).
    """
    V, tiles = len(views), model.uv_tiles
    H, W = resolution, resolution * tiles
    size = PHOTO_RESAMPLE_PX
    k = size / CROP_SIZE

    crops = torch.from_numpy(np.stack([warp_to_crop(v.image, reframe(v, size)[0], size) for v in views])).to(device)
    # photo-space masks are drawn in the 224² crop and sampled at the same (normalised) points:
    # the landmark face mask (its blur is 2.3 px of the re-crop), and the inner face (jaw +
    # brows hull, where eyes, brows and lips are expected; σ = 4 px of the re-crop) used below
    faces = torch.from_numpy(np.stack([v.face_mask for v in views])).to(device)
    inner = torch.from_numpy(np.stack([inner_face_mask(v.crop_landmarks, CROP_SIZE, CROP_SIZE, soft_px=4.0 / k)
                                       for v in views])).to(device)
    hook = None if detail is None else lambda full, i: _with_detail_normals(full, detail, fit.pose[i : i + 1], i)
    lit = delight_views(crops, fit.verts, model.faces, model.uv, model.faces_uv, scale_pose(fit.pose, k),
                        fit.crop_camera(size), fit.sh, H, W, (0.0, float(tiles)), image_weight=faces,
                        depth_jump_px=4.0 * k, detail_normals=hook)
    delit, conf = lit.delit, lit.weight.clone()  # (V,T',3), (V,T')
    # Outside the inner face only skin belongs on the head: there the confidence is multiplied by
    # the photo's skin weight (backend.skin: colour likelihood, connected to the face; brows and
    # lips kept, their tops reach into the band) and by a robust term that down-weights delit
    # colours far from the view's median skin colour, so a hat brim, a cap badge or hair on the
    # forehead band does not land on the head (the robust term alone let a cap badge through).
    grid = (lit.screen[:, :, None, :2] + 0.5) * (2.0 / size) - 1.0  # (V,T',1,2)

    def sample(maps: torch.Tensor) -> torch.Tensor:  # (V,224,224) photo-space → (V,T')
        return Fn.grid_sample(maps[:, None], grid.to(maps.dtype), align_corners=False)[:, 0, :, 0]

    inner_at = sample(inner)
    skin_at = sample(torch.from_numpy(np.stack([skin_weight(v.crop, v.crop_landmarks, CROP_SIZE, exclude_features=False)
                                                for v in views])).to(device))
    features_at = sample(torch.from_numpy(np.stack([feature_mask(v.crop_landmarks, CROP_SIZE, soft_px=2.0 / k)
                                                     for v in views])).to(device))
    zone_at = None if not hair else sample(torch.from_numpy(np.stack(
        [hair_zone(v.crop_landmarks, CROP_SIZE, soft_px=2.0 / k) for v in views])).to(device))
    glasses_masks = view_glasses_masks(views, soft_px=2.0 / k) if glasses else None  # (V,2,224,224) or None
    glasses_at = None if glasses_masks is None else [  # (V,T') the zone, the features it keeps
        sample(torch.from_numpy(glasses_masks[:, i].copy()).to(device)) for i in (0, 1)]
    hands = [hand_crop_mask(v) for v in views]  # (224,224) or None: the palm detector's hands (backend.detect.hands)
    hands_at = None if all(h is None for h in hands) else sample(torch.from_numpy(np.stack(
        [np.zeros((CROP_SIZE, CROP_SIZE), np.float32) if h is None else h for h in hands])).to(device))
    # (V,T') robust × skin weight, whether not darker than skin; non-skin below 0.5 (backend.occlusion)
    skin_like, bright = torch.ones_like(conf), torch.zeros_like(conf)
    for i in range(V):  # a loop over views
        core = conf[i] > 0.5
        if core.any():
            median = delit[i][core].median(0).values
            robust = torch.exp(-((delit[i] - median) ** 2).sum(-1) / (2 * 0.2**2))
            conf[i] = conf[i] * torch.maximum(robust * skin_at[i], inner_at[i])
            skin_like[i], bright[i] = robust * skin_at[i], not_darker(delit[i], median)
    if fit.view_weights is not None:  # a view the coarse fit down-weighted paints the head as little as it shaped it
        conf = conf * fit.view_weights.to(conf)[:, None]
    if hair:  # the face's sides: grazing texels and side hair fade into the completion (backend.side_hair)
        side_at, side_hair_at = (sample(torch.from_numpy(np.stack(x)).to(device)) for x in zip(
            *[(side_zone(v.crop_landmarks, CROP_SIZE, soft_px=2.0 / k), side_hair_mask(v.crop, v.crop_landmarks, v.skin_mask))
              for v in views]))
        conf = conf * rim_fade(lit.cosine, side_at, side_hair_at)
    maps = scatter_texels(delit, lit.texels, H, W)  # (V,H,W,3), zero where no view has weight
    if occluders:  # inside the inner face, off the features: non-skin (backend.occlusion)
        grid, valid = model_mirror_texels(model, H, W)
        nonskin, checked, bright = (scatter_texels(x, lit.texels, H, W) for x in (
            (1.0 - 2.0 * skin_like).clamp_min(0.0), inner_at * (1.0 - features_at), bright))
        occ = occluded(nonskin, checked, bright, lit.weights, grid, valid)
        donor = 1.0 - nonskin * checked
        if hands_at is not None:  # a hand is skin to every colour test: an occluder by detection, and no donor
            hand = scatter_texels(hands_at, lit.texels, H, W)
            occ, donor = torch.maximum(occ, hand), donor * (1.0 - hand)
        lost = conf * occ.flatten(1, 2).index_select(1, lit.texels)
        maps, weight = mirror_fill(maps, scatter_texels(conf - lost, lit.texels, H, W),
                                   scatter_texels(lost, lit.texels, H, W), grid, donor)
    else:
        weight = scatter_texels(conf, lit.texels, H, W)
    if hair or glasses_at is not None:  # the confidence the views' geometry allows, and their skin, for the fills
        seen = lit.weights if fit.view_weights is None else lit.weights * fit.view_weights.to(conf)[:, None, None]
        skin = scatter_texels(skin_like, lit.texels, H, W)
    if hair:  # above the brows, the temples, the upper rim: hair → the view's skin (backend.hair_fill)
        zone, feats = (scatter_texels(x, lit.texels, H, W) for x in (zone_at, features_at))
        maps, weight = remove_hair(maps, weight, seen, zone, skin, feats)
    if glasses_at is not None:  # frames and glare around the eyes → the view's skin (backend.glasses)
        zone, feats = (scatter_texels(x, lit.texels, H, W) for x in glasses_at)
        maps, weight = remove_hair(maps, weight, seen, zone, skin, feats, GLASSES_FILL)
    if V > 1:
        maps = torch.as_tensor(equalize_views(maps, weight).maps)
    # texels of zero coverage get the fill colour below: no need to fill them in the blend
    blended, coverage = multiband_blend(maps, weight, fill=False)
    blended, coverage = torch.as_tensor(blended), torch.as_tensor(coverage)
    # how much of each texel is skin (off the features), the views' final weights averaged
    skin_v = scatter_texels(skin_like * (1.0 - features_at), lit.texels, H, W)  # (V,H,W)
    skin = (skin_v * weight).sum(0) / weight.sum(0).clamp_min(1e-12)
    out = complete_albedo(model, blended.clamp(0.0, 1.0), coverage, lit.facing, skin)
    return out.clamp(0.0, 1.0).cpu().numpy().astype(np.float32), weight.cpu().numpy().astype(np.float32)


def complete_albedo(model: FaceModel, blended: torch.Tensor, coverage: torch.Tensor, facing: torch.Tensor,
                    skin: torch.Tensor, settings: FillSettings = FillSettings()) -> torch.Tensor:
    """The albedo where no view sees the head (:mod:`backend.texture_fill`): the face's hidden
    half from its mirror (:func:`~backend.texture_fill.mirror_complete`; donors seen well:
    :func:`~backend.texture_fill.mirror_donor`), the rest a harmonic continuation of the seen
    skin over the mesh (:func:`~backend.texture_fill.harmonic_fill`), faded in by the
    (completed) opacity. blended (H,W,3) the views' blend, coverage (H,W) their summed
    confidence, facing (T,) the flat texels some view may face (:func:`texture_opacity`), skin
    (H,W) in [0,1] how much of a texel is skin (off the brows, eyes and lips). Returns (H,W,3)."""
    H, W = coverage.shape
    opacity = texture_opacity(coverage, facing)
    grid, _ = model_mirror_texels(model, H, W)
    layout, reach = model_fill_layout(model, H, W, settings)
    both = torch.cat([blended, skin[..., None]], -1)  # the skin weight is completed with the colour
    both, opacity = mirror_complete(both, opacity, mirror_donor(coverage, settings), grid.to(both), reach.to(both))
    colour, source = both[..., :3], opacity * both[..., 3]
    skin_rgb = skin_colour(colour, source, FILL_COLOUR)
    source = source * skin_tone(colour, skin_rgb, settings)  # no shadows, highlights or beards as sources
    fill = harmonic_fill(colour, source, skin_rgb, model.faces, layout, settings)
    return colour * opacity[..., None] + fill * (1.0 - opacity[..., None])


def texture_opacity(coverage: torch.Tensor, texels: torch.Tensor) -> torch.Tensor:
    """Opacity of the photo texture over the fill colour, from the blended confidence.

    Full wherever the summed confidence is a fair fraction (0.3), fading over the low-confidence
    rim (not a linear mix everywhere), and never faster than a feather of σ ≈ 3.4 mm
    (``FEATHER_TEXELS_512`` at 512 texels per tile, scaled with H) that ends at the confident
    region's edge: where the skin weight stops at a hairline or a hat the confidence falls within
    a texel or two, and the photo was cut out against the fill colour with a rim of hair-tinted
    texels. The feather only lowers the opacity and is a blur normalised over the ``texels`` (T,)
    (flat indices) some view may face (:func:`backend.detail.masked_lowpass`), so UV island
    borders do not fade. coverage (H,W) ≥ 0. Returns (H,W) in [0,1].
    """
    H, W = coverage.shape
    w = smoothstep(coverage / 0.3)
    inside = torch.zeros(H * W, device=w.device, dtype=w.dtype)
    inside[texels] = 1.0
    feather = masked_lowpass(w.view(1, 1, H, W), inside.view(1, 1, H, W), FEATHER_TEXELS_512 * H / 512)[0, 0]
    return torch.minimum(w, smoothstep(2.0 * feather - 1.0))


def _with_detail_normals(normals: torch.Tensor, detail: DetailFitResult, pose: torch.Tensor, view: int) -> torch.Tensor:
    """Replace the face tile of a camera-space UV normal map (1,H,H·tiles,3) by the detailed
    normals (rotated from model to camera space and resampled)."""
    H = normals.shape[1]
    R = euler_to_rotation(pose[:, 1:4])[0]
    n_model = detail.surface.normals[view : view + 1]  # (1,S,S,3)
    valid = detail.layout.valid[:, None].float()
    n_cam = (n_model @ R.T).permute(0, 3, 1, 2)
    n_up = Fn.interpolate(n_cam, size=(H, H), mode="bilinear", align_corners=False)
    v_up = Fn.interpolate(valid, size=(H, H), mode="bilinear", align_corners=False)
    face = normals[:, :, :H].permute(0, 3, 1, 2)
    mixed = Fn.normalize(face * (1 - v_up) + n_up * v_up, dim=1, eps=1e-12)
    out = normals.clone()
    out[:, :, :H] = mixed.permute(0, 2, 3, 1) * (face.norm(dim=1, keepdim=True) > 0).permute(0, 2, 3, 1)
    return out


# -- coverage ----------------------------------------------------------------------------------
# View colours of :func:`coverage_image`, in view order (cycled beyond 8 views).
VIEW_COLOURS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.15, 0.15),  # view 0: red
    (0.15, 1.0, 0.15),  # view 1: green
    (0.2, 0.4, 1.0),  # view 2: blue
    (1.0, 0.9, 0.1),  # view 3: yellow
    (1.0, 0.2, 1.0),  # view 4: magenta
    (0.1, 1.0, 1.0),  # view 5: cyan
    (1.0, 0.55, 0.0),  # view 6: orange
    (0.6, 0.3, 1.0),  # view 7: violet
)


def coverage_image(weights) -> np.ndarray:
    """Visualise which view covers each texel.

    weights: (V,H,W) ≥ 0 (e.g. :func:`backend.blend.per_view_confidence`). Each view has the
    colour ``VIEW_COLOURS[v % 8]`` (red, green, blue, yellow, magenta, cyan, orange, violet);
    a texel shows the weight-averaged colour of the views that see it, with brightness
    ``min(1, Σ_v w)``: black = unseen, mixed hues = overlaps. Returns (H,W,3) uint8.
    """
    w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
    w = w.detach().float().cpu().clamp_min(0.0)
    if w.dim() != 3:
        raise ValueError(f"weights must be (V,H,W), got {tuple(w.shape)}")
    V = w.shape[0]
    colours = torch.tensor([VIEW_COLOURS[i % len(VIEW_COLOURS)] for i in range(V)])  # (V,3)
    total = w.sum(0)
    mix = torch.einsum("vhw,vc->hwc", w, colours) / total.clamp_min(1e-12)[..., None]
    rgb = mix * total.clamp(max=1.0)[..., None]
    return (rgb.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).numpy()


def face_region_mask(model: FaceModel, uv_frags: Fragments, regions: tuple[int, ...] | None = None) -> torch.Tensor:
    """UV texels of the face region: those whose triangle's three vertices all carry one of
    ``regions`` (default ``model.face_mask_regions``; ICT: 0 ``face_narrow``, 1 ``face_outer``).

    uv_frags: :func:`backend.render.rasterize_uv` of the model's UVs (batch 1). Returns (H,W) bool.
    """
    regions = model.face_mask_regions if regions is None else tuple(regions)
    in_region = torch.isin(model.region, torch.tensor(regions, device=model.region.device))  # (N,)
    tri_ok = in_region[model.faces].all(-1)  # (F,)
    fi = uv_frags.face_idx[0]
    return (fi >= 0) & tri_ok.to(fi.device)[fi.clamp_min(0)]


def face_region_coverage(weights, face_tile_mask, threshold: float = 0.1) -> float:
    """Fraction of the UV face region seen well: texels of ``face_tile_mask`` (H,W) bool whose
    total weight Σ_v weights (V,H,W) exceeds ``threshold``. Returns a float in [0,1]."""
    w = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
    m = torch.as_tensor(np.asarray(face_tile_mask) if not isinstance(face_tile_mask, torch.Tensor) else face_tile_mask)
    if w.dim() != 3 or m.shape != w.shape[1:]:
        raise ValueError(f"weights must be (V,H,W) and the mask (H,W), got {tuple(w.shape)}, {tuple(m.shape)}")
    m = m.to(w.device).bool()
    n = int(m.sum())
    if n == 0:
        raise ValueError("the face region mask is empty")
    return float(((w.sum(0) > threshold) & m).sum()) / n


def _layout_key(model: FaceModel, height: int, width: int, *extra, template: bool = True) -> bytes:
    """The cache key of a table of ``model``'s UV layout at height × width
    (:func:`backend.layout_cache.layout_arrays`): the digest of what it derives from, the UVs, faces
    and regions (``template``: the mean shape too) and ``extra``."""
    arrays = ((model.mean,) if template else ()) + (model.uv, model.faces_uv, model.faces, model.region)
    return array_digest(*(t.detach().cpu().numpy() for t in arrays),
                        extra=(height, width, model.uv_tiles, tuple(model.face_mask_regions), *extra))


def model_face_region(model: FaceModel, height: int, width: int) -> torch.Tensor:
    """:func:`face_region_mask` of the model's whole UV layout rasterised at height × width
    (H,W) bool. It depends on the model only, not on the head: computed once per layout
    (:func:`backend.layout_cache.layout_arrays`: every head of a batch, an add-on session or a
    worker rasterises the layout once, 0.08 s at 512 × 1536, and a new process reads it: 1 ms)."""
    key = _layout_key(model, height, width, template=False)

    def compute() -> dict[str, np.ndarray]:
        frags = rasterize_uv(model.uv, model.faces_uv, height, width, (0.0, float(model.uv_tiles)))
        return {"mask": face_region_mask(model, frags).cpu().numpy()}

    return torch.from_numpy(layout_arrays("face_region", key, ("mask",), compute)["mask"])


def model_mirror_texels(model: FaceModel, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`backend.occlusion.mirror_texels` of the model's layout at height × width, computed
    once per layout like :func:`model_face_region`. Returns (grid (H,W,2), valid (H,W) bool) on
    the model's device."""
    key = _layout_key(model, height, width)

    def compute() -> dict[str, np.ndarray]:
        grid, valid = mirror_texels(model, height, width)
        return {"grid": grid.cpu().numpy(), "valid": valid.cpu().numpy()}

    got = layout_arrays("mirror_texels", key, ("grid", "valid"), compute)
    dev = model.faces.device
    return torch.from_numpy(got["grid"]).to(dev), torch.from_numpy(got["valid"]).to(dev)


def face_tile_mirror(model: FaceModel, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each texel of the face tile (the detail map's UV square, size × size) has its mirror
    (:func:`model_mirror_texels` of the whole layout, cut to its first tile). Returns (grid
    (S,S,2) for :func:`torch.nn.functional.grid_sample` on an S×S map, align_corners=False;
    valid (S,S) bool: texels whose mirror exists and lies in the face tile)."""
    tiles = model.uv_tiles
    grid, valid = model_mirror_texels(model, size, size * tiles)
    grid, valid = grid[:, :size].clone(), valid[:, :size]
    grid[..., 0] = (grid[..., 0] + 1.0) * tiles - 1.0  # x over the whole layout → over the first tile
    return grid, valid & (grid[..., 0].abs() <= 1.0)


def model_fill_layout(model: FaceModel, height: int, width: int, settings: FillSettings = FillSettings()
                      ) -> tuple[FillLayout, torch.Tensor]:
    """:func:`backend.texture_fill.fill_layout` of the model's template mesh and its layout
    rasterised at ``settings.texels_per_tile`` (height × width divided by a whole factor), and
    the mirror completion's reach at height × width
    (:func:`backend.texture_fill.mirror_reach`, (H,W) float), computed once per layout like
    :func:`model_face_region`; on the model's device."""
    key = _layout_key(model, height, width, settings.min_edge_mm, settings.mirror_feather_mm, settings.texels_per_tile)
    names = ("edges", "edge_weight", "texel_face", "texel_bary", "inside", "vertex_mass", "reach")

    k = max(1, height // settings.texels_per_tile)  # the fill's grid: ⌈H/k⌉ × ⌈W/k⌉

    def compute() -> dict[str, np.ndarray]:
        tiles = float(model.uv_tiles)
        frags = rasterize_uv(model.uv, model.faces_uv, -(-height // k), -(-width // k), (0.0, tiles))
        lay = fill_layout(model.mean.float(), model.faces, frags.face_idx[0].long(), frags.bary[0], settings)
        inside = rasterize_uv(model.uv, model.faces_uv, height, width, (0.0, tiles)).face_idx[0] >= 0
        _, valid = model_mirror_texels(model, height, width)
        reach = mirror_reach(valid, inside, settings.mirror_feather_mm * texels_per_mm(height))
        return {"edges": lay.edges.cpu().numpy().astype(np.int32), "edge_weight": lay.edge_weight.cpu().numpy(),
                "texel_face": lay.texel_face.cpu().numpy().astype(np.int32), "texel_bary": lay.texel_bary.cpu().numpy(),
                "inside": lay.inside.cpu().numpy(), "vertex_mass": lay.vertex_mass.cpu().numpy(),
                "reach": reach.cpu().numpy().astype(np.float32)}

    got = layout_arrays("fill_layout", key, names, compute)
    dev = model.faces.device
    t = {n: torch.from_numpy(got[n]).to(dev) for n in names}
    layout = FillLayout(edges=t["edges"].long(), edge_weight=t["edge_weight"], texel_face=t["texel_face"].long(),
                        texel_bary=t["texel_bary"], inside=t["inside"], vertex_mass=t["vertex_mass"])
    return layout, t["reach"]


def uv_face_coverage(model: FaceModel, weights: np.ndarray) -> float:
    """Fraction of the UV face region (narrow face) that some view sees. weights (V,R,R·tiles)."""
    return float(face_region_coverage(torch.from_numpy(weights), model_face_region(model, *weights.shape[1:])))

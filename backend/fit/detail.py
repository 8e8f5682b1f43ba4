"""Stage-2 fit: the UV displacement map optimised per person with L_fine (eqs. 7–9 of the paper):

    L_fine = 1.0·L_pixel + 10·L_smooth (w_sn 20, w_sz 10) + 10·L_disp (w_dn 0.5, w_dz 0.01)

The displacement (1,1,S,S) mm over the face tile is shared by all views (it is the person's
skin detail); each view renders the dense mesh with its own pose, light and the coarse
(smooth, low-resolution) albedo, so shading detail must come from geometry. ``init`` starts
from a prediction (the U-Net in hybrid mode).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as Fn

from ..camera import Camera, project, scale_pose
from ..detail import (
    DenseTopology, DetailedSurface, dense_topology_batch, displace, lowpass_normaliser, masked_lowpass, seam_fade,
    texel_evidence,
)
from ..detail_input import DetailNetInput, blend_views
from ..facemodel import FaceModel
from ..losses import DetailLossWeights, disp_loss, pixel_loss, smooth_loss, weights_at_uv_size
from ..progress import CancelToken, ProgressFn, check_cancel
from ..render import RenderSettings, interpolate, render, sample_texture
from ..render.rasterize import visibility
from ..uvmaps import UVLayout, face_tile_layout, grid_normals, uv_position_map
from .coarse import CoarseFitResult
from .groups import check_groups, first_views
from .groups import per_view as rows_per_view
from .shading_gate import ShadingGate, shading_explained
from .step_graph import StepRunner, adam, use_graphs


@dataclass(frozen=True)
class DetailFitConfig:
    """- ``uv_size``: displacement map resolution (face tile texels per side).
    - ``steps``/``lr``: Adam schedule on the displacement (mm).
    - ``render_size``: crop resolution of the photometric loss (224 = the coarse crop).
    - ``max_mm``: displacement bound (clamped after each step).
    - ``weights``: the paper's stage-2 weights, for a 256² map: L_smooth's is carried to
      ``uv_size`` by :func:`backend.losses.weights_at_uv_size` (×(uv_size/256)²).
    - ``reg_scale``: multiplies L_smooth's and L_disp's weights in this per-image fit (as the
      coarse fit's ``prior_scale``); 1.0 is the paper's balance. Lower values let photo noise
      become geometry on real skin.
    - ``lowpass_sigma`` / ``lowpass_weight``: the displacement is a detail layer: the energy of
      its low frequencies (Gaussian σ = ``lowpass_sigma`` × the UV tile, 0.016 ≈ 4.6 mm on ICT's
      face tile) is penalised with ``lowpass_weight`` (mm² per texel, against L_pixel in 8-bit
      levels), so broad coarse-shape and lighting errors are not absorbed as displacement. A
      penalty, not a projection: removing the low-pass inside the optimisation rings as ripples
      where the photo gives no evidence.
    - ``albedo_gain_cells`` / ``albedo_gain_weight`` / ``albedo_gain_lr``: a low-frequency
      correction of the coarse albedo fitted with the displacement: an RGB log-gain on a
      cells × cells grid over the face tile (16 → ≈ 18 mm cells on ICT), bilinearly upsampled,
      with an L2 penalty (``albedo_gain_weight`` per squared log-gain, against L_pixel in 8-bit
      levels); 0 cells turns it off. L_pixel is L2,1, so each pixel pulls along the unit
      direction of its colour residual: where the coarse albedo is a few levels off over a
      region, every pixel there pulls the same way and a wrinkle's small swings no longer steer
      the displacement. ``DetailFitResult.pixel_albedo_only`` reports what the gain alone explains.
    - ``unseen_weight``: pulls the displacement to 0 where the photometric loss does not look
      (mm² per texel, mean over the tile, against L_pixel in 8-bit levels), weighted by
      1 − :func:`backend.detail.texel_evidence` (the share of a texel's pixels inside the loss
      mask, best view): hair, brows, lips, the neck below the jaw contour and texels no view sees.
      The skin mask is soft and L2,1 pulls each pixel with unit force whatever its weight, so
      without it hair at a fringe becomes relief; 0 turns it off. Given ``fit_detail``'s
      ``mirror``, it pulls such a texel towards its mirror texel's displacement instead, by as
      much as the mirror is seen: the hidden half of a turned face gets the seen half's relief.
    - ``shading_gate``: the loss mask keeps only the pixels whose residual against the coarse
      render a change of shading explains (:func:`.shading_gate.shading_explained`, from the
      coarse render before the first step): face paint, hair strands, a hood, a bottle at the mouth get
      weight 0, so they are neither fitted nor seen (``unseen_weight`` flattens the map there);
      None turns it off.
    - ``net_lr``: Adam learning rate of the U-Net's weights when ``fit_detail`` is given a net
      to tune (hybrid mode's ``tune_unet``) instead of the map.
    - ``step_graphs``: run each step as a capturable step replayed as a CUDA graph
      (:mod:`.step_graph`); None: on CUDA only; True on the CPU runs the capturable step eagerly.

    The evidence for these settings: docs/design.md, "Detail fit (stage 2)"."""

    uv_size: int = 256
    steps: int = 40
    lr: float = 0.05
    render_size: int = 224
    max_mm: float = 3.0
    weights: DetailLossWeights = DetailLossWeights()
    reg_scale: float = 1.0
    lowpass_sigma: float = 0.016
    lowpass_weight: float = 100.0
    albedo_gain_cells: int = 16
    albedo_gain_weight: float = 100.0
    albedo_gain_lr: float = 0.01
    unseen_weight: float = 100.0
    shading_gate: ShadingGate | None = ShadingGate()
    net_lr: float = 1e-4
    step_graphs: bool | None = None


@dataclass
class DetailFitResult:
    """displacement (G,1,S,S) mm (G items, 1 without ``groups``); surface: the displaced surface
    per view; topology: dense mesh connectivity (with ``groups``: the items' union, see
    :mod:`.batch`); layout: the face-tile UV rasterisation; dense_albedo (G,N,3);
    pixel_coarse / pixel_detail: L_pixel of the coarse and the detailed render per view over the
    report mask; pixel_skin_coarse / pixel_skin_detail: the same over the loss's skin mask;
    pixel_albedo_only: over the report mask, the coarse surface with the refined albedo (what the
    albedo gain explains without the displacement); pixel_rest_coarse / pixel_rest_detail: over
    the report mask without the skin (brows, lips, hair and glasses pixels: weight report·(1 −
    skin)); rest_share_coarse: the part of the coarse render's report-mask error sum that lies
    there. dense_albedo is the refined albedo."""

    displacement: torch.Tensor
    surface: DetailedSurface
    topology: DenseTopology
    layout: UVLayout
    dense_albedo: torch.Tensor
    pixel_coarse: list[float] = field(default_factory=list)
    pixel_detail: list[float] = field(default_factory=list)
    pixel_skin_coarse: list[float] = field(default_factory=list)
    pixel_skin_detail: list[float] = field(default_factory=list)
    pixel_albedo_only: list[float] = field(default_factory=list)
    pixel_rest_coarse: list[float] = field(default_factory=list)
    pixel_rest_detail: list[float] = field(default_factory=list)
    rest_share_coarse: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)


def coarse_albedo_map(model: FaceModel, fit: CoarseFitResult, layout: UVLayout) -> torch.Tensor:
    """The fitted (smooth) albedo resampled to the face tile's texels. Returns (G,S,S,3)."""
    S = layout.size
    dev = fit.verts.device
    rows = torch.arange(S, device=dev, dtype=fit.verts.dtype)
    uv = torch.stack(torch.meshgrid(1.0 - (rows + 0.5) / S, (rows + 0.5) / S, indexing="ij")[::-1], -1)[None]
    if fit.albedo is not None:
        return sample_texture(fit.albedo, uv.expand(fit.albedo.shape[0], -1, -1, -1), (0.0, float(model.uv_tiles)))

    colours = model.albedo(fit.tex)
    return interpolate(colours, layout.frags.face_idx, layout.frags.bary, model.faces)


def fit_detail(
    model: FaceModel,
    fit: CoarseFitResult,
    images: torch.Tensor,
    skin_mask: torch.Tensor,
    config: DetailFitConfig = DetailFitConfig(),
    init: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    report_mask: torch.Tensor | None = None,
    net: torch.nn.Module | None = None,
    net_input: DetailNetInput | None = None,
    groups: torch.Tensor | None = None,
    mirror: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> DetailFitResult:
    """Optimise the displacement map against V views.

    images (V,R,R,3) in [0,1] at ``config.render_size`` (the coarse crop resampled); skin_mask
    (V,R,R) weights the photometric loss; report_mask (V,R,R) (default: skin_mask) is where the
    coarse and detailed L_pixel are reported; ``fit`` in the 224² crop frame; ``init``
    (1,1,S,S) mm starts the map (a prediction).

    ``net`` and ``net_input`` (:func:`backend.detail_input.detail_net_input`): the stage-2
    U-Net becomes the map's parametrisation: the displacement is its output (views blended,
    resampled to ``config.uv_size``) and a copy of its weights is optimised with the same loss
    (``config.net_lr``; BatchNorm keeps its running statistics); ``net`` itself is not changed
    and ``init`` is ignored. This is hybrid mode's network fine-tuned on the photo.

    ``groups`` (V,) long: G independent items in one batch (:mod:`.batch`), with ``fit`` the
    batched coarse fit: one map and albedo gain per item, the loss the sum of the items' own.
    ``mirror``: (grid (S,S,2), valid (S,S) bool) where each face-tile texel's mirror lies
    (:func:`backend.texture.face_tile_mirror` at ``config.uv_size``): the unseen texels follow
    their mirror's displacement (``DetailFitConfig.unseen_weight``) instead of flattening.
    Returns :class:`DetailFitResult`.
    """
    V, R = images.shape[0], images.shape[1]
    G = check_groups(groups, V)
    if G > 1 and (net is not None or init is not None):
        raise ValueError("fit_detail: a starting map or a net to tune is for one person, not a batch of groups")
    crop = 224
    dev, dt = images.device, images.dtype
    w = replace(config.weights, smooth=config.weights.smooth * config.reg_scale, disp=config.weights.disp * config.reg_scale)
    w = weights_at_uv_size(w, config.uv_size)  # the paper's 256² smoothing at any map size
    layout = face_tile_layout(model, config.uv_size)
    coarse_pos = uv_position_map(fit.verts, model.faces, layout)  # (V,S,S,3)
    # one topology per item; a batch renders their union, each view with its item's triangles
    topo, item_faces = dense_topology_batch(layout, first_views(coarse_pos, groups))
    face_mask = None if G == 1 else rows_per_view(item_faces, groups, V)  # (V,M) bool
    coarse_n = grid_normals(coarse_pos, layout.valid)
    albedo_map = coarse_albedo_map(model, fit, layout)
    dense_albedo = albedo_map.reshape(G, -1, 3)[:, topo.texels]
    valid = layout.valid[:, None].to(dt)  # (1,1,S,S)
    pose = scale_pose(fit.pose, R / crop)
    cam = fit.crop_camera(R)  # with the coarse fit's lens
    settings = RenderSettings()
    S = config.uv_size
    tuned = None  # the U-Net copy whose weights parametrise the map
    if net is not None:
        if net_input is None:
            raise ValueError("fit_detail: a net to tune needs its net_input (backend.detail_input.detail_net_input)")
        tuned = copy.deepcopy(net).to(dev).eval().requires_grad_(True)
        opt_groups = [{"params": list(tuned.parameters()), "lr": config.net_lr}]
    else:
        disp = torch.zeros(G, 1, S, S, device=dev, dtype=dt) if init is None else init.clone()
        disp = torch.nn.Parameter(disp)
        opt_groups = [{"params": [disp], "lr": config.lr}]
    gain = None  # (1,3,G,G) log-gain of the coarse albedo over the face tile
    if config.albedo_gain_cells > 0:
        gain = torch.nn.Parameter(torch.zeros(G, 3, config.albedo_gain_cells, config.albedo_gain_cells, device=dev, dtype=dt))
        opt_groups.append({"params": [gain], "lr": config.albedo_gain_lr})
    opt = adam(opt_groups, use_graphs(config.step_graphs, dev)[1])
    sigma = config.lowpass_sigma * config.uv_size  # texels
    # the displacement fades to 0 over ≈ 3.4 mm at the UV island borders (face-tile seam, ears)
    fade = seam_fade(valid)
    n_valid = valid.sum().clamp_min(1.0)
    lowpass_norm = lowpass_normaliser(valid, sigma)  # masked_lowpass's denominator: the mask is fixed

    def map_now() -> torch.Tensor:  # (1,1,S,S) mm
        if tuned is None:
            return disp
        out = blend_views(tuned(net_input.pair, net_input.visible).to(dt), net_input.visible.to(dt))
        if out.shape[-1] != S:
            out = Fn.interpolate(out, size=(S, S), mode="bilinear", align_corners=False)
        return out * valid

    def albedo_now() -> torch.Tensor:  # (G,N,3) dense vertex albedo
        if gain is None:
            return dense_albedo
        up = Fn.interpolate(gain, size=(config.uv_size, config.uv_size), mode="bilinear", align_corners=False)
        factor = up.exp().permute(0, 2, 3, 1).reshape(G, -1, 3)[:, topo.texels]
        return dense_albedo * factor

    def render_views(surface: DetailedSurface, visible: torch.Tensor | None = None):
        rend = render(surface.dense_verts, topo.faces, pose, cam, fit.sh, vertex_colors=rows_per_view(albedo_now(), groups, V),
                      settings=settings, face_mask=face_mask, visible=visible)
        return rend, loss_mask * rend.alpha

    def per_view(rend, mask) -> list[float]:
        return [float(pixel_loss(images[i : i + 1], rend.image[i : i + 1], mask[i : i + 1])) for i in range(V)]

    def error_sum(pixel: list[float], mask) -> list[float]:  # mean × weight = Σ weight·distance, per view
        return [p * max(float(mask[i].sum()), 1.0) for i, p in enumerate(pixel)]

    loss_mask = skin_mask  # (V,R,R) the shading gate's share of the skin mask, from rend0 on
    report = skin_mask if report_mask is None else report_mask
    off_skin = report * (1.0 - skin_mask.clamp(0.0, 1.0))  # the report mask's brows, lips, hair...
    with torch.no_grad():
        flat = displace(coarse_pos, torch.zeros_like(valid).expand(V, -1, -1, -1), layout, topo, coarse_n)
        rend0, mask0 = render_views(flat)
        if config.shading_gate is not None and config.steps > 0:
            loss_mask = skin_mask * shading_explained(images, rend0, mask0, config.shading_gate)
        skin0, mask0 = skin_mask * rend0.alpha, loss_mask * rend0.alpha
        face0, rest0 = report * rend0.alpha, off_skin * rend0.alpha
        pixel_coarse, pixel_skin_coarse = per_view(rend0, face0), per_view(rend0, skin0)
        pixel_rest_coarse = per_view(rend0, rest0)
        rest_share_coarse = [r / max(t, 1e-12) for r, t in zip(error_sum(pixel_rest_coarse, rest0),
                                                               error_sum(pixel_coarse, face0))]
        unseen = mirror_grid = mirror_seen = None
        if config.unseen_weight > 0 and config.steps > 0:  # (G,1,S,S): each item's best view
            per = V // G
            evidence = torch.cat([texel_evidence(rend0.face_idx[g * per:(g + 1) * per], rend0.fragments.bary[g * per:(g + 1) * per],
                                                 mask0[g * per:(g + 1) * per], topo) for g in range(G)])
            unseen = (1.0 - evidence) * valid
            if mirror is not None:  # (G,S,S,2) grid, (G,1,S,S) how much each texel's mirror is seen
                mirror_grid = mirror[0].to(dev, dt)[None].expand(G, -1, -1, -1)
                mirror_seen = Fn.grid_sample(evidence * valid, mirror_grid, align_corners=False) * mirror[1].to(dev, dt)
    history = []
    terms: dict[str, torch.Tensor] = {}
    capturable, graph = use_graphs(config.step_graphs, dev)
    visible = torch.empty(V * R * R, dtype=torch.long, device=dev) if capturable else None  # pass 1, per step

    def fit_step() -> dict[str, torch.Tensor]:  # capturable with ``visible`` (backend.fit.step_graph)
        shown = map_now() * fade  # (G,1,S,S)
        surface = displace(coarse_pos, rows_per_view(shown, groups, V), layout, topo, coarse_n)
        rend, mask = render_views(surface, visible)
        terms = {  # every term a mean over the G items; Δn (G,3,S,S) of each item's first view
            "pixel": pixel_loss(images, rend.image, mask, view_weights=fit.view_weights),  # the coarse fit's view weights
            "smooth": smooth_loss(shown, first_views(surface.delta_normals, groups), valid, w),
            "disp": disp_loss(shown, first_views(surface.delta_normals, groups), valid, w),
        }
        loss = w.pixel * terms["pixel"] + w.smooth * terms["smooth"] + w.disp * terms["disp"]
        if config.lowpass_weight > 0:
            terms["lowpass"] = masked_lowpass(shown, valid, sigma, lowpass_norm).pow(2).sum() / (n_valid * G)
            loss = loss + config.lowpass_weight * terms["lowpass"]
        if unseen is not None:
            # the target: 0, or the mirror texel's displacement as far as that is seen
            target = 0.0 if mirror is None else Fn.grid_sample(shown.detach(), mirror_grid, align_corners=False) * mirror_seen
            terms["unseen"] = (unseen * (shown - target).pow(2)).sum() / (n_valid * G)
            loss = loss + config.unseen_weight * terms["unseen"]
        if gain is not None:
            terms["gain"] = gain.pow(2).mean()
            loss = loss + config.albedo_gain_weight * terms["gain"]
        loss = loss * G  # the sum of the items' losses
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if tuned is None:
            with torch.no_grad():
                disp.clamp_(-config.max_mm, config.max_mm)
                disp.mul_(valid)
        return terms

    run_step = StepRunner(fit_step, graph)
    for step in range(config.steps):
        check_cancel(cancel)
        if visible is not None:  # pass 1 outside the step: its shapes depend on the data
            with torch.no_grad():
                shown = map_now() * fade
                dense = displace(coarse_pos, rows_per_view(shown, groups, V), layout, topo, coarse_n).dense_verts
                visible.copy_(visibility(project(dense, pose, cam), topo.faces, R, R, settings.raster_settings(cam),
                                         face_mask))
        terms = run_step()
        if progress is not None and (step % 5 == 0 or step == config.steps - 1):
            progress((step + 1) / config.steps, f"detail {step + 1}/{config.steps}")
        if step % 10 == 0 or step == config.steps - 1:  # reading the terms waits for the device: not every step
            history.append({"step": step, **{k: float(v.detach()) for k, v in terms.items()}})
    with torch.no_grad():
        disp = map_now().detach().clamp(-config.max_mm, config.max_mm) * fade
        surface = displace(coarse_pos, rows_per_view(disp, groups, V), layout, topo, coarse_n)
        rend = render_views(surface)[0]
        pixel_detail, pixel_skin_detail = per_view(rend, report * rend.alpha), per_view(rend, skin_mask * rend.alpha)
        pixel_rest_detail = per_view(rend, off_skin * rend.alpha)
        # the refined albedo on the coarse surface: the gain's own share (no step: rend0 itself)
        rend_a = rend0 if config.steps == 0 else render_views(flat)[0]
        pixel_albedo_only = per_view(rend_a, report * rend_a.alpha)
        dense_albedo = albedo_now()
    return DetailFitResult(
        displacement=disp, surface=surface, topology=topo, layout=layout, dense_albedo=dense_albedo,
        pixel_albedo_only=pixel_albedo_only, pixel_rest_coarse=pixel_rest_coarse, pixel_rest_detail=pixel_rest_detail,
        rest_share_coarse=rest_share_coarse,
        pixel_coarse=pixel_coarse, pixel_detail=pixel_detail, pixel_skin_coarse=pixel_skin_coarse,
        pixel_skin_detail=pixel_skin_detail, history=history,
    )

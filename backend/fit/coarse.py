"""Stage-1 fit by analysis-by-synthesis with the paper's losses (its eqs. 3–6).

One or more views of one person (V views, batched): identity and albedo are shared, pose and
light are per view, expression is shared or per view. Schedule:

1. closed-form orthographic pose from the inner 68 landmarks (:mod:`.pose_init`);
2. landmark warm-up: pose, identity, expression under L_lm + R_param (no rendering: cheap),
   solved by Levenberg–Marquardt (:mod:`.landmark_solve`) or run as Adam steps;
3. full loss L_coarse = 1.3·L_pixel + 1.0·L_lm + 1.5·L_id + 20·R_param, coarse-to-fine over
   image resolutions, optimising pose, identity, expression, SH light and the albedo (L_id's
   network every few steps, :mod:`.identity_lag`).

Albedo: the ICT model has no texture basis, so we estimate a low-resolution UV albedo map
(``albedo_size`` texels per tile) jointly with the SH light, with a smoothness term and a weak
prior pulling its mean towards a plausible skin albedo; the SH light absorbs the shading. With a
texture basis (BFM), its coefficients are fitted instead and ω_t regularises them.

All images here are the aligned crops (``size``×``size`` pixels): an orthographic camera, or with
``camera`` each view's lens (a pinhole camera through the orthographic pose, :mod:`backend.camera`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as Fn

from ..camera import Camera, project, scale_pose
from ..facemodel import FaceModel
from ..lighting import sh_ambient
from ..losses import CoarseLossWeights, identity_loss, landmark_loss, param_regularizer, pixel_loss
from ..progress import CancelToken, ProgressFn, check_cancel
from ..render.rasterize import visibility
from ..render.renderer import RenderSettings, render
from .contour import contour_candidates, select_contour
from .dense import dense_term
from .groups import check_groups, per_item_pixel, per_view
from .identity_lag import LaggedIdentity
from .landmark_noise import LandmarkNoiseSettings, judged_trust, landmark_trust, point_weights, toward
from .landmark_solve import LandmarkLayout, landmark_residuals, solve_box_lm
from .lid_gap import LidGapSettings, fit_lid_gaps
from .parts_term import PartsFitConfig, fit_parts, parts_term
from .photo_trust import PhotoTrustSettings, photo_trust, rescheduled, switched_lens
from .pose_init import INNER_LANDMARKS, fit_orthographic_pose
from .step_graph import StepRunner, adam, use_graphs
from .symmetry import symmetry_prior
from .view_weights import ViewWeighting, ViewWeightSettings, landmark_residual_px, pixel_residual
from .warmup_reuse import WarmupSolution, warmup_key

LANDMARK_SOLVERS = ("adam", "gauss_newton")  # CoarseFitConfig.landmark_solver
SKIN_ALBEDO = (0.62, 0.47, 0.40)  # a plausible mean skin albedo (linear-ish RGB in [0,1])


@dataclass(frozen=True)
class CoarseFitConfig:
    """Schedule and weights of the coarse fit.

    - ``landmark_steps``: warm-up steps on L_lm + R_param only (Adam).
    - ``landmark_solver``: ``"gauss_newton"`` solves the warm-up by Levenberg–Marquardt in at
      most ``landmark_iterations`` iterations (:mod:`.landmark_solve`); ``"adam"``: ``landmark_steps``
      Adam steps (always with ``init``: a converged solve would undo the prediction's shape in
      the directions the landmarks do not see).
    - ``photo_schedule``: (resolution, steps) stages of the full loss, coarse to fine.
    - ``lr_*``: Adam learning rates per parameter group (radians, log-scale, px, coefficients).
    - ``weights``: the paper's stage-1 weights.
    - ``identity``: use L_id (needs the identity network; skipped gracefully when None given).
    - ``identity_every``: run the identity network every this many steps, its first-order
      expansion in between (:mod:`.identity_lag`; 1: every step).
    - ``albedo_size``: texels per UV tile of the fitted albedo map.
    - ``albedo_prior`` / ``albedo_smooth``: weights of the mean-skin prior and the smoothness term
      (mean squared neighbour difference; a map of ``albedo_size`` A needs (A/32)² times the weight
      for the same smoothness in mm). Smooth enough that wrinkle and fold shading goes to the
      geometry, not the albedo; it relies on the brows and lips being out of the photometric mask
      (``backend.skin.skin_mask``): a smooth albedo cannot hold them and the shape would.
    - ``jaw_weight``: weight of the 17 contour landmarks relative to the inner ones.
    - ``sliding_contour``: use the sliding jaw contour (:mod:`.contour`).
    - ``prior_scale``: multiplies R_param's weight in this per-image fit (1.0 = the paper's
      balance, as training uses it). Less fits good landmarks closer but lets a detector's
      noise write the identity (checked both ways: docs/design.md). All other weights are
      the paper's.
    - ``dense_weight``: weight of the dense Face Mesh term (:mod:`.dense`) relative to L_lm, for
      views with dense points (0: off); ``jaw_weight_with_dense``: the jaw contour's weight in
      those views (instead of ``jaw_weight``).
    - ``id_ball``: the identity stays inside the ball ‖x_id‖ ≤ ``id_ball``·√K_id (projected
      after every step; None: unbounded). The coefficients are unit-variance, so a face of the
      model's population has ‖x_id‖ ≈ √K_id; the ball stops the weak prior from letting hair or
      a hand pull the ears and jaw out of shape.
    - ``step_graphs``: each step as a capturable step replayed as a CUDA graph (:mod:`.step_graph`;
      the stage with L_id runs it eagerly); None: on CUDA only; True on the CPU runs the
      capturable steps eagerly.

    - ``parts``: after the fit, render the model's eyes, sockets and teeth with it and fit their
      colours and the gaze to the photo's eyes and mouth (:mod:`.parts_term`).

    The evidence for ``albedo_smooth``, ``prior_scale`` and ``id_ball``: docs/design.md,
    "Coarse fit (stage 1)".
    - ``view_weights``: robust per-view weights of a multi-view fit (:mod:`.view_weights`).
    - ``landmark_noise``: per-point weights of L_lm from each point's detector noise
      (:mod:`.landmark_noise`).
    - ``expression_symmetry``: strength of the photometric stages' mirror-pair expression prior,
      growing with each view's yaw (:mod:`.symmetry`; 0: off).
    - ``photo_trust``: scale the landmark terms of an item whose photo the model explains better
      than real photos are explained, from the first photometric stage's L_pixel, then solve the
      warm-up and that stage again (:mod:`.photo_trust`; the solved warm-up only).
    - ``lid_gap``: after the photometric stages, each eye's blink / squint / wide shapes alone
      fitted to the detected lid gaps, all else frozen (:mod:`.lid_gap`).
    """

    landmark_steps: int = 150
    landmark_solver: str = "gauss_newton"
    landmark_iterations: int = 12
    photo_schedule: tuple[tuple[int, int], ...] = ((112, 40), (224, 60))
    lr_rot: float = 0.01
    lr_scale: float = 0.01
    lr_trans: float = 0.3
    lr_id: float = 0.05
    lr_exp: float = 0.02
    lr_sh: float = 0.05
    lr_albedo: float = 0.02
    weights: CoarseLossWeights = CoarseLossWeights()
    identity: bool = True
    identity_every: int = 5
    albedo_size: int = 32
    albedo_prior: float = 50.0
    albedo_smooth: float = 8000.0
    jaw_weight: float = 0.5
    sliding_contour: bool = True
    shared_expression: bool = True
    prior_scale: float = 0.03
    id_ball: float | None = 1.7
    step_graphs: bool | None = None
    dense_weight: float = 1.0
    jaw_weight_with_dense: float = 0.5
    view_weights: ViewWeightSettings = ViewWeightSettings()
    parts: PartsFitConfig = PartsFitConfig()
    landmark_noise: LandmarkNoiseSettings = LandmarkNoiseSettings()
    expression_symmetry: float = 30.0
    photo_trust: PhotoTrustSettings = PhotoTrustSettings()
    lid_gap: LidGapSettings = LidGapSettings()


@dataclass
class CoarseFitResult:
    """Fitted parameters (crop frame). V views; K sizes from the model.

    id (G,K_id) (G items, 1 without ``groups``); exp (V,K_exp); pose (V,7) for an orthographic
    ``size``² crop camera; sh (V,27); albedo (G,A,A·tiles,3) UV map in [0,1] (or tex (G,K_tex)
    with a texture model);
    verts (V,N,3) mm; landmarks (V,68,2) crop px; history: loss dicts per logged step;
    view_weights (V,) the final robust view weights of one person's views (:mod:`.view_weights`),
    None when every view counted fully (one view, a batch of items, or weighting off).
    """

    id: torch.Tensor
    exp: torch.Tensor
    pose: torch.Tensor
    sh: torch.Tensor
    albedo: torch.Tensor | None
    tex: torch.Tensor | None
    verts: torch.Tensor
    landmarks: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    view_weights: torch.Tensor | None = None
    parts_colours: torch.Tensor | None = None  # (M,3) fitted part material colours (:mod:`.parts_term`)
    camera: Camera | None = None  # the S² crop camera with each view's lens; None: orthographic
    warmup: WarmupSolution | None = None  # the solved landmark warm-up, for a fit of the same problem (.warmup_reuse)

    def crop_camera(self, size: int) -> Camera:
        """The camera of the fit's ``size``² crop (its lens per view; orthographic without one)."""
        return Camera(size, size) if self.camera is None else self.camera.resized(size, size)


class _Params(torch.nn.Module):
    """Free parameters of the fit (so ``.parameters()`` and devices are handled in one place)."""

    def __init__(self, model: FaceModel, pose0: torch.Tensor, n_views: int, cfg: CoarseFitConfig, image_mean: torch.Tensor):
        """image_mean (G,3): each item's mean skin colour (G items, :mod:`.groups`)."""
        super().__init__()
        dev, dt = pose0.device, pose0.dtype
        G = image_mean.shape[0]
        n_exp_rows = G if cfg.shared_expression else n_views
        self.id = torch.nn.Parameter(torch.zeros(G, model.n_id, device=dev, dtype=dt))
        self.exp = torch.nn.Parameter(torch.zeros(n_exp_rows, model.n_exp, device=dev, dtype=dt))
        self.rot = torch.nn.Parameter(pose0[:, 1:4].clone())
        self.log_f = torch.nn.Parameter(torch.zeros(n_views, 1, device=dev, dtype=dt))
        self.trans = torch.nn.Parameter(pose0[:, 4:6].clone())
        self.register_buffer("f0", pose0[:, :1].clone())
        self.sh = torch.nn.Parameter(sh_ambient(1.0, n_views, dev, dt))
        if model.has_texture:
            self.tex = torch.nn.Parameter(torch.zeros(G, model.n_tex, device=dev, dtype=dt))
            self.albedo = None
        else:
            self.tex = None
            A = cfg.albedo_size
            init = image_mean.to(dev, dt).view(G, 1, 1, 3).expand(G, A, A * model.uv_tiles, 3)
            self.albedo = torch.nn.Parameter(init.clone())

    def pose(self) -> torch.Tensor:
        f = self.f0 * self.log_f.exp()
        return torch.cat([f, self.rot, self.trans, torch.zeros_like(f)], -1)


def _apply_init(params: _Params, init: dict[str, torch.Tensor]) -> None:
    """Copy predicted starting values into the free parameters (shapes adapted to the fit's)."""
    with torch.no_grad():
        if "id" in init:
            params.id.copy_(init["id"].to(params.id).mean(0, keepdim=True))
        if "exp" in init:
            exp = init["exp"].to(params.exp)
            params.exp.copy_(exp.mean(0, keepdim=True) if params.exp.shape[0] == 1 else exp)
            params.exp.clamp_(0.0, 1.0)
        if "sh" in init:
            params.sh.copy_(init["sh"].to(params.sh))
        if "tex" in init and params.tex is not None:
            params.tex.copy_(init["tex"].to(params.tex).mean(0, keepdim=True))
        if "albedo" in init and params.albedo is not None:
            alb = init["albedo"].to(params.albedo).permute(0, 3, 1, 2)
            alb = Fn.interpolate(alb, size=params.albedo.shape[1:3], mode="bilinear", align_corners=False)
            params.albedo.copy_(alb.permute(0, 2, 3, 1).mean(0, keepdim=True).clamp(0, 1))


def _landmark_weights(cfg: CoarseFitConfig, device, dtype) -> torch.Tensor:
    w = torch.ones(68, device=device, dtype=dtype)
    w[:17] = cfg.jaw_weight
    return w


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(V,H,W,C) → (V,size,size,C) with area averaging (anti-aliased downscale)."""
    if images.shape[1] == size:
        return images
    x = images.permute(0, 3, 1, 2)
    x = Fn.interpolate(x, size=(size, size), mode="area")
    return x.permute(0, 2, 3, 1)


def _albedo_smoothness(albedo: torch.Tensor) -> torch.Tensor:  # mean over items (equal sizes)
    dx = albedo[:, :, 1:] - albedo[:, :, :-1]
    dy = albedo[:, 1:] - albedo[:, :-1]
    return dx.pow(2).mean() + dy.pow(2).mean()


def _into_id_ball(ident: torch.Tensor, id_ball: float) -> torch.Tensor:
    """``ident`` (…,K_id) projected onto the ball ‖x_id‖ ≤ ``id_ball``·√K_id (unchanged inside it)."""
    radius = id_ball * ident.shape[-1] ** 0.5
    return ident * (radius / ident.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0)


def _solve_warmup(params: _Params, config: CoarseFitConfig, sub_model, sub_vid: torch.Tensor, sub_rows: torch.Tensor,
                  landmarks: torch.Tensor, lm_weights: torch.Tensor, weighting: ViewWeighting,
                  groups: torch.Tensor | None, dense_t, local: torch.Tensor, S: int,
                  trust: torch.Tensor | None = None, cam: Camera | None = None) -> dict[str, torch.Tensor]:
    """The landmark warm-up by Levenberg–Marquardt (:mod:`.landmark_solve`) on the model restricted to
    the landmark vertices, each item of a batch (``groups``) on its own, as it would be alone;
    writes the solution into ``params``; ``trust`` (V,) scales each view's landmark terms. Returns the final loss terms."""
    V, G = landmarks.shape[0], params.id.shape[0]
    shared = config.shared_expression  # one expression row per item, else one per view
    items = [torch.arange(V, device=landmarks.device)] if G == 1 else [(groups == g).nonzero()[:, 0] for g in range(G)]
    fitted = torch.empty_like(landmarks)  # (V,68,2) the model's landmarks at the solution
    costs, iterations = 0.0, 0
    for g, views in enumerate(items):
        n = views.numel()
        exp_rows = slice(g, g + 1) if shared else views
        layout = LandmarkLayout(n, 1, 1 if shared else n, params.id.shape[1], params.exp.shape[1])
        x0 = layout.join(params.rot[views], params.log_f[views], params.trans[views], params.id[g:g + 1],
                         params.exp[exp_rows]).detach()
        lower, upper = torch.full_like(x0, -torch.inf), torch.full_like(x0, torch.inf)
        lower[layout.exp_slice()], upper[layout.exp_slice()] = 0.0, 1.0
        dense_g = None
        if dense_t is not None:  # the item's own views' dense points
            dense_g = copy.copy(dense_t)
            dense_g.has, dense_g.targets = dense_t.has[views], dense_t.targets[views]
        t = None if trust is None else trust[views]  # (n,) one scalar when the views agree, else per view
        one = t is None or bool((t == t[0]).all())
        weights = config.weights if t is None or not one else replace(config.weights, landmark=config.weights.landmark
                                                                       * float(t[0]))
        residuals_at = landmark_residuals(
            layout, sub_model, params.f0[views], S, sub_vid, sub_rows if config.sliding_contour else None,
            landmarks[views], lm_weights[views] if lm_weights.dim() == 2 else lm_weights,
            weighting.landmark_weights if G == 1 else None, weights, config.prior_scale, None, dense_g, local,
            config.dense_weight, camera=None if cam is None else cam.select(views), view_trust=None if one else t)

        def project_id(x: torch.Tensor, layout=layout) -> torch.Tensor:  # the identity ball, as clamp_ after Adam
            if config.id_ball is None:
                return x
            rot, log_f, trans, ident, exp = layout.split(x)
            return layout.join(rot, log_f, trans, _into_id_ball(ident, config.id_ball), exp)

        # robust view weights (one person's views): solve, re-weigh from the solution's residuals, solve
        # again from there (the Adam warm-up re-weighs every few steps in its second half)
        x = x0
        for round_ in range(3 if G == 1 and weighting.active else 1):
            if round_:
                weighting.update(landmark_residual_px(residuals_at.landmarks(x), landmarks, lm_weights),
                                 layout.split(x)[0][:, 1])
            x, item_costs = solve_box_lm(x, residuals_at, lower, upper, project_id, config.landmark_iterations)
        rot, log_f, trans, ident, exp = layout.split(x)
        with torch.no_grad():
            params.rot[views], params.log_f[views], params.trans[views] = rot, log_f, trans
            params.id[g:g + 1], params.exp[exp_rows] = ident, exp
        fitted[views] = residuals_at.landmarks(x)
        costs += item_costs[-1]
        iterations = max(iterations, len(item_costs) - 2)
    with torch.no_grad():
        terms = {"landmark": landmark_loss(fitted, landmarks, lm_weights, weighting.landmark_weights),
                 "reg": param_regularizer(params.id, per_view(params.exp, groups, V), params.tex, config.weights)}
    return {**terms, "solve_cost": torch.tensor(costs), "solve_iterations": torch.tensor(float(iterations))}


def fit_coarse(
    model: FaceModel,
    images: torch.Tensor,
    landmarks: torch.Tensor,
    skin_mask: torch.Tensor,
    config: CoarseFitConfig = CoarseFitConfig(),
    identity_net: torch.nn.Module | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    init: dict[str, torch.Tensor] | None = None,
    dense: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    mesh68: torch.Tensor | None = None,
    gaps: torch.Tensor | None = None,
    camera: Camera | None = None,
    warmup: WarmupSolution | None = None,
    fallback_camera: Camera | None = None,
) -> CoarseFitResult:
    """Fit the face model to V aligned crops of one person (or of G people: ``groups``).

    images (V,S,S,3) float in [0,1]; landmarks (V,68,2) detected, crop pixels; skin_mask
    (V,S,S) float in [0,1] (where the photometric loss may look). ``identity_net`` maps
    (images (B,S,S,3), landmarks (B,68,2)) → features (B,D); None skips L_id.
    ``init`` (hybrid mode): starting values from a prediction, any of ``id`` (1|V,K_id) (views
    averaged), ``exp`` (V,K_exp), ``pose`` (V,7) crop frame, ``sh`` (V,27), ``tex`` (1,K_tex),
    ``albedo`` (1,A,A·tiles,3); the closed-form pose is then not used.
    ``dense`` (V,468,2): Face Mesh's points in crop pixels, NaN rows for views without them
    (:mod:`.dense`; used when the model has a Face Mesh table).
    ``groups`` (V,) long: the item each view belongs to, for G independent fits in one batch
    (:mod:`.batch`); each item owns its identity, expression and albedo rows, and the loss is
    the sum of the items' own losses. None: all views are one person.
    ``mesh68`` (V,68,2): Face Mesh's 68 points in crop pixels (NaN rows: views without), a second
    opinion on ``landmarks`` for :mod:`.landmark_noise`; ``gaps`` (V,): the detectors'
    disagreement per view (NaN: unknown), the evidence of :func:`.landmark_noise.landmark_trust`.
    ``camera``: the S² crops' camera with each view's lens (``focal`` (V,) crop px, ∞ for an
    orthographic view; ``principal`` (V,2) crop px); None: orthographic (:mod:`backend.camera`).
    ``warmup``: a solved warm-up (``CoarseFitResult.warmup`` of an earlier fit), used instead of
    solving when it solved this very problem (:mod:`.warmup_reuse`), else ignored.
    ``fallback_camera``: the S² crops' camera with the lens each view takes when the photo trust
    lowers its landmarks (:mod:`.photo_trust`; for lenses the landmarks picked); the history's
    ``lens_fallback`` (``lens_fallback_items``) records it. None: the lens stays.
    """
    if config.landmark_solver not in LANDMARK_SOLVERS:
        raise ValueError(f"unknown landmark_solver {config.landmark_solver!r}: use one of {', '.join(LANDMARK_SOLVERS)}")
    V, S = images.shape[0], images.shape[1]
    G = check_groups(groups, V)
    trust = landmark_trust(replace(config.landmark_noise, trust_view_power=None), landmarks, mesh68, gaps, groups)
    view_trust = landmark_trust(config.landmark_noise, landmarks, mesh68, gaps, groups)  # (V,) or None (.landmark_noise)
    views_differ = view_trust is not None and (trust is None or not torch.equal(view_trust, trust))
    if G > 1 and init is not None:
        raise ValueError("fit_coarse: starting values (init) are for one person, not a batch of groups")
    dev, dt = images.device, images.dtype
    if camera is not None and (camera.width, camera.height) != (S, S):
        raise ValueError(f"fit_coarse: the camera is {camera.width}×{camera.height}, the crops {S}²")
    cam = camera if camera is not None and camera.has_lens else Camera(S, S)
    lens = cam if cam.focal is not None else None  # the crops' camera where it has a lens, else None
    w = config.weights
    lm_weights = _landmark_weights(config, dev, dt)
    dense_t = dense_term(model, dense) if config.dense_weight > 0 else None
    if dense_t is not None:  # (V,68): the jaw contour at its own weight in views with dense points
        lm_weights = lm_weights.expand(V, -1).clone()
        lm_weights[dense_t.has, :17] = config.jaw_weight_with_dense
    if config.landmark_noise.active:  # (V,68) each point by its own noise
        lm_weights = lm_weights * point_weights(config.landmark_noise, landmarks, mesh68)

    # 1. closed-form pose from the inner landmarks of the mean face
    inner = torch.tensor(INNER_LANDMARKS, device=dev)
    lm_vid = model.landmarks68
    mean = model.mean.to(dt)
    pose0 = fit_orthographic_pose(mean[lm_vid[inner]].expand(V, -1, -1), landmarks[:, inner], cam)
    skin_pixels = skin_mask[..., None] > 0.5
    if G == 1:
        img_mean = ((images * skin_pixels).flatten(0, 2).sum(0) / skin_pixels.flatten().sum().clamp_min(1))[None]
    else:  # (G,3) each item's own mean over its views' skin
        sums = torch.zeros(G, 4, device=dev, dtype=dt).index_add_(
            0, groups, torch.cat([(images * skin_pixels).flatten(1, 2).sum(1), skin_pixels.flatten(1).sum(1, True)], 1))
        img_mean = sums[:, :3] / sums[:, 3:].clamp_min(1)
    if init is not None and "pose" in init:
        pose0 = init["pose"].to(dev, dt)
    params = _Params(model, pose0, V, config, img_mean)
    if init is not None:
        _apply_init(params, init)
    rows = contour_candidates(model.mean, model.landmarks68, model.face_vertex_mask).to(dev)
    face_tri = model.face_vertex_mask[model.faces].all(-1)  # (F,) triangles of the face region
    render_settings = RenderSettings(u_range=(0.0, float(model.uv_tiles)))
    history: list[dict[str, float]] = []
    total_steps = config.landmark_steps + sum(n for _, n in config.photo_schedule)
    step = 0
    weighting = ViewWeighting(config.view_weights, V if G == 1 else 1, dev, dt)  # one person's views only

    # The landmark warm-up needs only the 68 landmark vertices and the jaw's contour candidates
    # (U of the N vertices): the model evaluated on them alone is the same linear map.
    used = torch.unique(torch.cat([lm_vid.reshape(-1), rows.reshape(-1)]
                                  + ([dense_t.vertex_ids()] if dense_t is not None else [])))  # (U,) sorted vertex ids
    local = torch.full((model.n_verts,), -1, dtype=torch.long, device=dev)
    local[used] = torch.arange(used.numel(), device=dev)
    sub_model = model.restricted(used)
    sub_vid, sub_rows = local[lm_vid], local[rows]

    def shape_and_landmarks(pose_full: torch.Tensor, size: int, subset: bool = False):
        """verts (V,N,3) (the U landmark vertices when ``subset``), exp, screen, landmarks (V,68,2)."""
        exp = per_view(params.exp, groups, V)
        if subset:
            verts = sub_model(per_view(params.id, groups, V), exp)  # (V,U,3)
            lm, cand = sub_vid, sub_rows
        else:
            verts = model(per_view(params.id, groups, V), exp)  # (V,N,3)
            lm, cand = lm_vid, rows
        screen = project(verts, scale_pose(pose_full, size / S), cam.resized(size, size))
        vid = lm.expand(V, -1).clone()
        if config.sliding_contour:
            with torch.no_grad():
                vid[:, :17] = select_contour(screen[..., :2], cand)
        lms = torch.gather(screen[..., :2], 1, vid[..., None].expand(-1, -1, 2))
        return verts, exp, screen, lms

    def clamp_() -> None:
        with torch.no_grad():
            params.exp.clamp_(0.0, 1.0)
            if config.id_ball is not None:
                params.id.copy_(_into_id_ball(params.id, config.id_ball))
            if params.albedo is not None:
                params.albedo.clamp_(0.0, 1.0)

    # 2. landmark warm-up
    graph = use_graphs(config.step_graphs, dev)[1]
    opt = adam(
        [
            {"params": [params.rot], "lr": config.lr_rot},
            {"params": [params.log_f], "lr": config.lr_scale},
            {"params": [params.trans], "lr": config.lr_trans},
            {"params": [params.id], "lr": config.lr_id},
            {"params": [params.exp], "lr": config.lr_exp},
        ], graph
    )

    def landmark_step() -> dict[str, torch.Tensor]:  # capturable: static shapes, no host sync (.step_graph)
        _, exp, screen, lms = shape_and_landmarks(params.pose(), S, subset=True)
        terms = {
            "landmark": landmark_loss(toward(lms, landmarks, trust), landmarks, lm_weights, weighting.landmark_weights),
            "reg": param_regularizer(params.id, exp, params.tex, w),
        }
        loss = w.landmark * terms["landmark"] + w.reg * config.prior_scale * terms["reg"]
        if dense_t is not None:
            terms["dense"] = dense_t.loss(dense_t.points(screen[..., :2], local), S, S, weighting.landmark_weights, trust)
            loss = loss + w.landmark * config.dense_weight * terms["dense"]
        loss = loss * G  # every term a mean over equal items: × G is the sum of the items' losses
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        clamp_()
        return terms

    run_step = StepRunner(landmark_step, graph)  # on CUDA: replayed as a CUDA graph
    solver = config.landmark_solver if init is None else "adam"  # a converged solve would undo a prediction's
    solved = None
    if solver == "gauss_newton":                                    # shape where the landmarks are silent
        key = None if weighting.active else warmup_key(model, config, {"landmarks": landmarks, "weights": lm_weights,
                                                       "trust": trust, "dense": dense, "pose0": pose0, "groups": groups}, cam)
        if warmup is not None and warmup.key == key:
            terms = warmup.apply(params)
        else:
            terms = _solve_warmup(params, config, sub_model, sub_vid, sub_rows, landmarks, lm_weights, weighting, groups,
                                  dense_t, local, S, trust, lens)
        solved = None if key is None else WarmupSolution.capture(params, terms, key)
        step += config.landmark_steps
    for i in range(config.landmark_steps if solver == "adam" else 0):
        check_cancel(cancel)
        if weighting.due(i, config.landmark_steps, warmup=True):  # outside the (captured) step: in place
            with torch.no_grad():
                lms = shape_and_landmarks(params.pose(), S, subset=True)[3]
            weighting.update(landmark_residual_px(lms, landmarks, lm_weights), params.rot[:, 1])
        terms = run_step()
        step += 1
        if progress is not None and (i % 10 == 0 or i == config.landmark_steps - 1):
            progress(step / total_steps, f"landmarks {i + 1}/{config.landmark_steps}")
    history.append({"stage": "landmarks", **{k: float(v.detach()) for k, v in terms.items()}, **weighting.summary(),
                    **({} if trust is None else {"landmark_trust": float(trust[0])} if G == 1 else
                       {"landmark_trust_items": trust[:: V // G].tolist()})})

    # 3. full loss, coarse to fine
    symmetry = symmetry_prior(config.expression_symmetry, model.exp_names, params.rot[:, 1])  # None: off (.symmetry)
    opt_groups = [
        {"params": [params.rot], "lr": config.lr_rot * 0.5},
        {"params": [params.log_f], "lr": config.lr_scale * 0.5},
        {"params": [params.trans], "lr": config.lr_trans * 0.5},
        {"params": [params.id], "lr": config.lr_id},
        {"params": [params.exp], "lr": config.lr_exp},
        {"params": [params.sh], "lr": config.lr_sh},
    ]
    if params.albedo is not None:
        opt_groups.append({"params": [params.albedo], "lr": config.lr_albedo})
    else:
        opt_groups.append({"params": [params.tex], "lr": config.lr_id})
    capturable, graph = use_graphs(config.step_graphs, dev)
    opt = adam(opt_groups, graph)
    target_feat = None
    if identity_net is not None and config.identity:
        with torch.no_grad():
            target_feat = identity_net(images, landmarks)
    prior = torch.tensor(SKIN_ALBEDO, device=dev, dtype=dt)
    terms = {}
    schedule = list(config.photo_schedule)
    judged = solver != "gauss_newton"  # the photometric evidence judges the landmarks once (.photo_trust)
    while schedule:
        size, n_steps = schedule.pop(0)
        img_s = _resize(images, size)
        mask_s = _resize(skin_mask[..., None], size)[..., 0]
        lm_target = landmarks * (size / S) + 0.5 * (size / S) - 0.5
        cam_s = cam.resized(size, size)
        visible = torch.empty(V * size * size, dtype=torch.long, device=dev) if capturable else None
        last: dict[str, torch.Tensor] = {}  # the last step's render and loss mask
        lagged_id = None if target_feat is None or size != S else LaggedIdentity(
            lambda c: identity_loss(target_feat, identity_net(c, landmarks), weighting.weights), config.identity_every)

        def photo_step() -> dict[str, torch.Tensor]:  # capturable with ``visible`` (.step_graph)
            pose = params.pose()
            verts, exp, screen, lms = shape_and_landmarks(pose, size)
            if params.albedo is not None:
                rend = render(
                    verts, model.faces, scale_pose(pose, size / S), cam_s, params.sh,
                    texture=params.albedo if G == 1 else per_view(params.albedo, groups, V), uv=model.uv, faces_uv=model.faces_uv,
                    settings=render_settings, visible=visible,
                )
            else:
                rend = render(
                    verts, model.faces, scale_pose(pose, size / S), cam_s, params.sh,
                    vertex_colors=per_view(model.albedo(params.tex), groups, V), settings=render_settings, visible=visible,
                )
            visible_face = face_tri[rend.face_idx.clamp_min(0)] & rend.mask
            mask = mask_s * visible_face.to(dt)
            vw = weighting.weights
            terms = {
                "pixel": pixel_loss(img_s, rend.image, mask, view_weights=vw),
                "landmark": landmark_loss(toward(lms, lm_target, trust), lm_target, lm_weights,
                                          weighting.landmark_weights) * (S / size) ** 2,
                "reg": param_regularizer(params.id, exp, params.tex, w),
            }
            loss = w.pixel * terms["pixel"] + w.landmark * terms["landmark"] + w.reg * config.prior_scale * terms["reg"]
            if dense_t is not None:
                terms["dense"] = dense_t.loss(dense_t.points(screen[..., :2]), size, S, weighting.landmark_weights, trust)
                loss = loss + w.landmark * config.dense_weight * terms["dense"]
            if symmetry is not None:
                terms["symmetry"] = symmetry.loss(exp)
                loss = loss + terms["symmetry"]
            if lagged_id is not None:
                composite = rend.image * visible_face[..., None] + img_s * (~visible_face[..., None])
                terms["identity"] = lagged_id(composite)
                loss = loss + w.identity * terms["identity"]
            if params.albedo is not None:
                alb = params.albedo
                terms["albedo_prior"] = (alb.mean((1, 2)) - prior).pow(2).sum(-1).mean()  # mean over items
                terms["albedo_smooth"] = _albedo_smoothness(alb)
                loss = loss + config.albedo_prior * terms["albedo_prior"] + config.albedo_smooth * terms["albedo_smooth"]
            loss = loss * G  # every term is a mean over equal items: × G is the sum of the items' losses
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            clamp_()
            last.update(image=rend.image.detach(), mask=mask)
            return terms

        # L_id's network is not known to be capturable: its stage runs the same step eagerly
        run_step = StepRunner(photo_step, graph and not (target_feat is not None and size == S))
        for i in range(n_steps):
            check_cancel(cancel)
            if visible is not None:  # the rasteriser's pass 1 outside the step: its shapes depend on the data
                with torch.no_grad():
                    screen = shape_and_landmarks(params.pose(), size)[2]
                    visible.copy_(visibility(screen, model.faces, size, size, render_settings.raster_settings(cam_s)))
            terms = run_step()
            if weighting.due(i, n_steps, warmup=False):  # from this step's render, for the next steps
                with torch.no_grad():
                    lms = shape_and_landmarks(params.pose(), size)[3]
                weighting.update(landmark_residual_px(lms, lm_target, lm_weights) * (S / size), params.rot[:, 1],
                                 pixel_residual(img_s, last["image"], last["mask"]))
            step += 1
            if progress is not None and (i % 5 == 0 or i == n_steps - 1):
                progress(step / total_steps, f"photometric {size}px {i + 1}/{n_steps}")
        history.append({"stage": f"photo{size}", **{k: float(v.detach()) for k, v in terms.items()},
                        **weighting.summary()})
        if G > 1:  # each item's own photometric error (the batch's is their mean; the trust check reads it)
            history[-1]["pixel_items"] = per_item_pixel(img_s, last["image"], last["mask"], groups)
        if not judged:
            judged = True
            pixel_g = torch.tensor(history[-1]["pixel_items"] if G > 1 else [history[-1]["pixel"]], device=dev, dtype=dt)
            scale = photo_trust(config.photo_trust, pixel_g)  # (G,) or None: every item keeps its trust
            if scale is not None or views_differ:  # the landmarks re-weighed: the warm-up and this stage again
                scale_v = None if scale is None else scale[groups] if G > 1 else scale.expand(V)
                trust = judged_trust(trust, view_trust, scale_v)  # (.landmark_noise)
                if views_differ and (scale is None or bool((scale >= 1).any())):  # some views kept their own trust
                    history[-1]["landmark_trust_views"] = trust.tolist()
                if scale is not None:
                    history[-1]["photo_trust" if G == 1 else "photo_trust_items"] = float(scale[0]) if G == 1 else scale.tolist()
                if scale is not None and fallback_camera is not None:  # before the warm-up: it solves through the new lens
                    cam, switched = switched_lens(cam, fallback_camera, scale_v < 1.0)
                    lens = cam if cam.has_lens else None
                    fell = switched.reshape(G, -1).any(1).to(dt)  # (G,) items whose lens changed
                    history[-1]["lens_fallback" if G == 1 else "lens_fallback_items"] = (
                        float(fell[0]) if G == 1 else fell.tolist())
                _solve_warmup(params, config, sub_model, sub_vid, sub_rows, landmarks, lm_weights, weighting, groups,
                              dense_t, local, S, trust, lens)
                rest = (rescheduled(config.photo_trust, (size, n_steps), schedule) if scale is not None
                        else [(size, n_steps)] + schedule)  # the first stage again, then the rest
                total_steps += sum(n for _, n in rest) - sum(n for _, n in schedule)
                schedule = rest

    with torch.no_grad():  # the lid gaps by the eyes' own shapes, pose and identity frozen (.lid_gap)
        if config.lr_exp > 0:  # a fit told to keep the expression keeps it
            params.exp.copy_(fit_lid_gaps(config.lid_gap, model, params.id, params.exp, groups, params.pose(), cam,
                                          landmarks, lm_weights, trust))
        pose = params.pose()
        verts, exp, _, lms = shape_and_landmarks(pose, S)
    parts = parts_term(model, config.parts, landmarks, params.exp.shape[0], params.albedo is not None, G)
    if parts is not None:
        history.append(fit_parts(parts, images, verts, params.id.detach(), exp, pose, params.sh.detach(),
                                 params.albedo.detach(), render_settings, config.weights.pixel, camera=cam))
    return CoarseFitResult(
        id=params.id.detach(),
        exp=exp.detach(),
        pose=pose.detach(),
        sh=params.sh.detach(),
        albedo=None if params.albedo is None else params.albedo.detach(),
        tex=None if params.tex is None else params.tex.detach(),
        verts=verts.detach(),
        landmarks=lms.detach(),
        history=history,
        view_weights=None if weighting.weights is None else weighting.weights.clone(),
        parts_colours=None if parts is None else parts.colours.detach().clamp(0, 1),
        camera=lens,
        warmup=solved,
    )

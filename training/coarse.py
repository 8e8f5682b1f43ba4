"""Stage 1: train the coarse encoder (crop → 3DMM, SH light, pose) with L_coarse.

Single process (CPU or one GPU)::

    python -m training.coarse --data /data/celeba --out runs/coarse [--key=value ...]
    python -m training.coarse --data synthetic --out runs/smoke --encoder.arch=light \\
        --data.crop_size=64 --loop.steps=100 --use_identity=false

Several GPUs (or CPU processes with gloo)::

    torchrun --nproc_per_node 4 -m training.coarse --data /data/celeba --out runs/coarse

Resume with ``--resume=auto``; start from other weights at step 0 with ``--init=PATH``;
``--config run.toml`` for overrides from a file; ``--help`` lists every key and default.

Per step (:meth:`CoarseTask.step`): encoder → code → (id, exp, tex, sh, pose) → face model →
orthographic projection → renderer → L_coarse = 1.3·L_pixel + 1.0·L_lm + 1.5·L_id + 20·R_param
(weights in ``--loss.*``; L_lm in px² of the 224² crop at any ``--data.crop_size``, the
expression clamped to the blendshape range as predict mode clamps it). The renderer, face model and identity net run in float32 even
under mixed precision.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from backend.align import CROP_SIZE
from backend.camera import Camera, project
from backend.checkpoint import make_model_card, unwrap
from backend.facemodel import load_default
from backend.identity import identity_features, load_identity_net
from backend.losses import CoarseLossWeights, identity_loss, landmark_loss, param_regularizer, pixel_loss
from backend.nets import EncoderConfig, FaceEncoder, clamp_expression, decompose
from backend.render.renderer import RenderSettings, render

from .albedo_basis import AlbedoBasis
from .config import CoarseConfig, cli_main, to_dict, write_resolved
from .data import aligned_crop_pose, build_datasets
from .loop import StepResult, TrainResult, check_run_folder, seed_everything, settle_resume_config, train
from .preflight import check_run, check_weights
from .validation import SuiteValidation


def float32_region(device: torch.device):
    """Context that turns autocast off (renderer, face model, losses stay in float32)."""
    return torch.autocast(device.type, enabled=False) if device.type == "cuda" else nullcontext()


@dataclass
class CoarseOutputs:
    """Decoded prediction of a batch: ``params`` from :func:`decompose` with ``exp`` clamped to
    the blendshape range as predict mode clamps it (``exp_raw``: the encoder's value), ``verts`` (B,V,3) mm,
    ``landmarks`` (B,68,2) crop px, ``albedo_uv`` (B,Ht,Wt,3) or None, ``vertex_albedo`` (B,V,3) or None."""

    params: dict[str, torch.Tensor]
    verts: torch.Tensor
    landmarks: torch.Tensor
    albedo_uv: torch.Tensor | None
    vertex_albedo: torch.Tensor | None


class CoarseTask:
    """What one stage-1 step computes. ``model`` is the (trainable) encoder; the face model,
    albedo basis and identity net are frozen companions moved with :meth:`to`."""

    #: How decode keeps the expression in :data:`~backend.nets.EXP_RANGE`: ``"hard"`` (the plain
    #: clamp predict mode applies; the default), ``"straight_through"`` (clamped forward, identity
    #: gradient) or ``"none"`` (the encoder's raw values). Only ``benchmarks.bench_exp_clamp``
    #: changes it, to measure the choice (docs/training.md, "Expression range").
    exp_clamp: str = "hard"

    def __init__(self, face_model, encoder: FaceEncoder, weights: CoarseLossWeights = CoarseLossWeights(),
                 albedo: AlbedoBasis | None = None, identity_net: nn.Module | None = None, supervised: float = 0.0):
        self.face_model = face_model
        self.supervised = supervised  # weight of L_param on batches that carry true "id"/"exp"
        self.model = encoder
        self.weights = weights
        self.albedo = albedo
        self.identity_net = identity_net
        size = encoder.config.in_size
        self.camera = Camera(size, size)
        if face_model.n_tex == 0 and encoder.config.n_tex and albedo is None:
            raise ValueError("the face model has no texture basis: pass an AlbedoBasis for n_tex > 0")

    def to(self, device: torch.device) -> "CoarseTask":
        self.face_model.to(device)
        self.model.to(device)
        if self.albedo is not None:
            self.albedo.to(device)
        if self.identity_net is not None:
            self.identity_net.to(device)
        return self

    def decode(self, code: torch.Tensor) -> CoarseOutputs:
        """code (B, code_dim) → :class:`CoarseOutputs` (float32)."""
        cfg = unwrap(self.model).config

        p = dict(decompose(code.float(), cfg))
        p["exp_raw"] = p["exp"]
        if self.exp_clamp == "hard":
            p["exp"] = clamp_expression(p["exp_raw"])
        elif self.exp_clamp == "straight_through":
            p["exp"] = p["exp_raw"] + (clamp_expression(p["exp_raw"]) - p["exp_raw"]).detach()
        verts = self.face_model(p["id"], p["exp"])
        lm = project(verts, p["pose"], self.camera)[:, self.face_model.landmarks68, :2]
        albedo_uv = vertex_albedo = None
        if self.face_model.n_tex > 0:
            vertex_albedo = self.face_model.albedo(p["tex"])
        elif self.albedo is not None:
            albedo_uv = self.albedo(p["tex"])
        return CoarseOutputs(p, verts, lm, albedo_uv, vertex_albedo)

    def render(self, out: CoarseOutputs):
        fm = self.face_model
        if out.albedo_uv is not None:
            return render(out.verts, fm.faces, out.params["pose"], self.camera, out.params["sh"], texture=out.albedo_uv,
                          uv=fm.uv, faces_uv=fm.faces_uv, settings=RenderSettings(u_range=(0.0, float(fm.uv_tiles))))
        return render(out.verts, fm.faces, out.params["pose"], self.camera, out.params["sh"],
                      vertex_colors=out.vertex_albedo)

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], want_images: bool) -> StepResult:
        images = batch["image"]  # (B,3,S,S)
        code = model(images)
        w = self.weights
        # L_lm in px² of the 224² crop whatever the crop size (as the fit measures it), so the
        # paper's weight balances it against L_pixel at every --data.crop_size
        lm_scale = (CROP_SIZE / images.shape[-1]) ** 2
        with float32_region(images.device):
            out = self.decode(code)
            p = out.params
            terms = {
                "landmark": landmark_loss(out.landmarks, batch["landmarks"].float()) * lm_scale,
                "reg": param_regularizer(p["id"], p["exp_raw"], p["tex"] if p["tex"].numel() else None, w),
            }
            rendered = None
            if w.pixel > 0 or (w.identity > 0 and self.identity_net is not None) or want_images:
                rendered = self.render(out)
                photo = images.float().permute(0, 2, 3, 1)  # (B,S,S,3)
                mask = rendered.alpha * batch["mask"].float()
                if w.pixel > 0:
                    terms["pixel"] = pixel_loss(photo, rendered.image, mask)
                if w.identity > 0 and self.identity_net is not None:
                    alpha = rendered.alpha[..., None]
                    composite = (rendered.image * alpha + photo * (1 - alpha)).permute(0, 3, 1, 2)
                    lm = batch["landmarks"].float()
                    with torch.no_grad():
                        f_in = identity_features(images.float(), lm, self.identity_net)
                    f_out = identity_features(composite, lm, self.identity_net)
                    terms["identity"] = identity_loss(f_in, f_out)
            if self.supervised > 0 and "id" in batch and "exp" in batch:  # known coefficients (synthetic faces)
                terms["param"] = (p["id"] - batch["id"].float()).pow(2).mean() + \
                    (p["exp"] - batch["exp"].float()).pow(2).mean()
            losses = {k: (self.supervised if k == "param" else getattr(w, k)) * v for k, v in terms.items()}
            metrics = {f"raw_{k}": v.detach() for k, v in terms.items()}
            if "landmark" in terms:
                metrics["lm_rmse_px224"] = terms["landmark"].detach().sqrt()
            imgs = {}
            if want_images and rendered is not None:
                alpha = rendered.alpha[..., None]
                photo = images.float().permute(0, 2, 3, 1)
                imgs = {
                    "input": images.float(),
                    "render": rendered.image.permute(0, 3, 1, 2),
                    "overlay": (rendered.image * alpha + photo * (1 - alpha)).permute(0, 3, 1, 2),
                }
        return StepResult(losses, metrics, imgs)


def build_task(cfg: CoarseConfig, face_model) -> CoarseTask:
    """Encoder (sized from the face model / albedo basis), albedo basis and identity net from a config."""
    albedo = None
    n_tex = face_model.n_tex
    if n_tex == 0 and cfg.albedo_k > 0:
        albedo = AlbedoBasis.lowfreq(cfg.albedo_k, cfg.albedo_uv, tiles=face_model.uv_tiles)
        n_tex = albedo.n_tex
    enc_cfg = EncoderConfig(
        arch=cfg.encoder.arch, in_size=cfg.data.crop_size, n_id=face_model.n_id, n_exp=face_model.n_exp, n_tex=n_tex,
        width=cfg.encoder.width, fc_dim=cfg.encoder.fc_dim, init_pose=aligned_crop_pose(cfg.data.crop_size),
    )
    identity_net = None
    if cfg.use_identity and cfg.loss.identity > 0:
        identity_net = load_identity_net()
    return CoarseTask(face_model, FaceEncoder(enc_cfg), cfg.loss, albedo, identity_net, supervised=cfg.supervised)


def run(cfg: CoarseConfig, detect_fn=None) -> TrainResult:
    """Build data and task from ``cfg`` and train (resumes per ``cfg.resume``)."""
    out = Path(cfg.out)
    check_run(cfg)  # run folder name and writability, data folder, checkpoints' contents: before any work
    resume_from = check_run_folder(out, cfg.resume, cfg.init)  # before anything is written
    if resume_from is not None:
        cfg = settle_resume_config(cfg, resume_from)
    suite_hook = SuiteValidation(cfg.eval, "coarse", out, coarse_ckpt=None) if cfg.eval.every > 0 else None
    face_model = load_default(cfg.model or None)
    seed_everything(cfg.loop.seed)  # same initial weights on every rank and every run
    task = build_task(cfg, face_model)
    check_weights(cfg, task.model)  # resume/init weights fit the encoder: before preprocessing
    cache = Path(cfg.data.cache) if cfg.data.cache else out / "cache"
    train_set, val_set, summary = build_datasets(cfg.data, face_model, cfg.data.crop_size, cfg.loop.seed, cache, detect_fn)
    rank0 = int(__import__("os").environ.get("RANK", "0")) == 0
    if rank0:
        write_resolved(cfg, out)
    card = make_model_card(face_model=face_model, uv_size=cfg.albedo_uv if task.albedo is not None else None,
                           data_summary=summary, steps=0, config=to_dict(cfg), stage="coarse")
    if task.albedo is not None:
        card["albedo_basis"] = {"kind": "lowfreq", "k": task.albedo.n_tex, "uv_size": task.albedo.uv_size}
    if suite_hook is not None:
        suite_hook.card = card
    return train(task, train_set, loop=cfg.loop, optim=cfg.optim, out_dir=out, run_config=to_dict(cfg),
                 model_card=card, val_set=val_set if len(val_set) else None, resume=cfg.resume, init=cfg.init,
                 suite_hook=suite_hook)


def main(argv: list[str] | None = None) -> int:
    return cli_main(CoarseConfig(), run, __doc__, "stage 1", argv)


if __name__ == "__main__":
    sys.exit(main())

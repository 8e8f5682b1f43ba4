"""Stage 2: train the detail U-Net (unwrapped UV pair → displacement) with L_fine; stage 1 frozen.

Single process::

    python -m training.detail --data /data/celeba --coarse runs/coarse/last.pt --out runs/detail
    python -m training.detail --data synthetic --coarse runs/smoke/last.pt --out runs/smoke_d \\
        --uv_size=64 --ngf=16 --loop.steps=100

Several GPUs::

    torchrun --nproc_per_node 4 -m training.detail --data /data/celeba --coarse runs/coarse/last.pt --out runs/detail

The crop size comes from the stage-1 checkpoint (its encoder's input size). Per step
(:meth:`DetailTask.step`): frozen encoder → coarse mesh, light, pose and coarse render → photo
and coarse render unwrapped into the face UV tile (:func:`backend.uvmaps.unwrap_pair`, invisible
texels masked) → U-Net → displacement along the coarse normals (:func:`backend.detail.displace`)
→ dense mesh rendered with the coarse albedo and light → L_fine = 1.0·L_pixel + 10·L_smooth +
10·L_disp (weights in ``--loss.*``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn

from backend.checkpoint import load_checkpoint, load_weights, make_model_card
from backend.detail import dense_topology, displace
from backend.facemodel import load_default
from backend.losses import DetailLossWeights, disp_loss, pixel_loss, smooth_loss, weights_at_uv_size
from backend.nets import DetailUNet, EncoderConfig, FaceEncoder, UNetConfig
from backend.render.interpolate import interpolate, sample_texture
from backend.render.renderer import render
from backend.uvmaps import face_tile_layout, unwrap_pair, uv_position_map
from backend.validate import check_architecture

from .albedo_basis import AlbedoBasis
from .coarse import CoarseTask, float32_region
from .config import ConfigError, DetailConfig, cli_main, to_dict, write_resolved
from .data import build_datasets
from .loop import StepResult, TrainResult, check_run_folder, seed_everything, settle_resume_config, train
from .preflight import check_run, check_weights
from .validation import SuiteValidation


class DetailTask:
    """What one stage-2 step computes. ``model`` is the U-Net; ``coarse`` the frozen stage 1."""

    def __init__(self, coarse: CoarseTask, unet: DetailUNet, weights: DetailLossWeights = DetailLossWeights()):
        coarse.model.eval().requires_grad_(False)
        self.coarse = coarse
        self.model = unet
        self.weights = weights
        self.layout = None
        self.topology = None

    def to(self, device: torch.device) -> "DetailTask":
        self.coarse.to(device)
        self.model.to(device)
        fm = self.coarse.face_model
        self.layout = face_tile_layout(fm, self.model.config.size)
        mean_pos = uv_position_map(fm.mean[None], fm.faces, self.layout)
        self.topology = dense_topology(self.layout, mean_pos)
        return self

    def _dense_albedo(self, out) -> torch.Tensor:
        """Coarse albedo at the dense vertices (B,N,3)."""
        topo = self.topology
        if out.albedo_uv is not None:
            uv = topo.uv[None, None].expand(out.albedo_uv.shape[0], 1, -1, 2)  # (B,1,N,2) face tile
            tiles = float(self.coarse.face_model.uv_tiles)
            return sample_texture(out.albedo_uv, uv, (0.0, tiles))[:, 0]
        fr = self.layout.frags
        uv_albedo = interpolate(out.vertex_albedo, fr.face_idx, fr.bary, self.coarse.face_model.faces)
        return uv_albedo.reshape(uv_albedo.shape[0], -1, 3)[:, topo.texels]

    def step(self, model: nn.Module, batch: dict[str, torch.Tensor], want_images: bool) -> StepResult:
        images = batch["image"].float()  # (B,3,S,S)
        photo = images.permute(0, 2, 3, 1)
        fm, cam = self.coarse.face_model, self.coarse.camera
        with torch.no_grad(), float32_region(images.device):
            out = self.coarse.decode(self.coarse.model(images))
            pose, sh = out.params["pose"], out.params["sh"]
            coarse_img = self.coarse.render(out).image
            pair, visible = unwrap_pair(photo, coarse_img, out.verts, fm.faces, pose, cam, self.layout)
            positions = uv_position_map(out.verts, fm.faces, self.layout)
            albedo = self._dense_albedo(out)
        disp = model(pair, visible)  # (B,1,Su,Su) mm
        with float32_region(images.device):
            disp = disp.float()
            surf = displace(positions, disp, self.layout, self.topology)
            rendered = render(surf.dense_verts, self.topology.faces, pose, cam, sh, vertex_colors=albedo)
            mask = rendered.alpha * batch["mask"].float()
            valid = self.layout.valid[:, None].to(disp.dtype).expand_as(disp)
            w = weights_at_uv_size(self.weights, disp.shape[-1])  # the paper's 256² smoothing at any map size
            terms = {
                "pixel": pixel_loss(photo, rendered.image, mask),
                "smooth": smooth_loss(disp, surf.delta_normals, valid, w),
                "disp": disp_loss(disp, surf.delta_normals, valid, w),
            }
            losses = {k: getattr(w, k) * v for k, v in terms.items()}
            metrics = {f"raw_{k}": v.detach() for k, v in terms.items()}
            metrics["disp_abs_mm"] = (disp.abs() * valid).sum() / valid.sum().clamp_min(1)
            imgs = {}
            if want_images:
                scale = max(self.model.config.max_mm, 1e-6)
                imgs = {
                    "input": images,
                    "coarse": coarse_img.permute(0, 3, 1, 2),
                    "detailed": rendered.image.permute(0, 3, 1, 2),
                    "uv_photo": pair[:, :3],
                    "displacement": (disp / (2 * scale) + 0.5).clamp(0, 1),
                }
        return StepResult(losses, metrics, imgs)


def load_coarse(path: str | Path, face_model) -> CoarseTask:
    """Frozen stage 1 from its checkpoint: encoder (architecture from the checkpoint) + albedo basis."""
    ckpt = load_checkpoint(path)
    card = ckpt.get("model_card", {})
    fm_card = card.get("face_model", {})
    if fm_card and (fm_card.get("n_verts") != face_model.n_verts or fm_card.get("name") != face_model.name):
        raise ConfigError(
            f"{path} was trained with face model {fm_card.get('name')!r} ({fm_card.get('n_verts')} vertices), "
            f"not {face_model.name!r} ({face_model.n_verts}): pass the same --model"
        )
    check_architecture(ckpt, lambda arch: FaceEncoder(EncoderConfig.from_dict(arch)), path, "a stage-1 encoder")
    encoder = FaceEncoder(EncoderConfig.from_dict(ckpt["arch"]))
    load_weights(ckpt, encoder)
    albedo = None
    ab = card.get("albedo_basis")
    if ab:
        albedo = AlbedoBasis.lowfreq(ab["k"], ab["uv_size"], tiles=face_model.uv_tiles)
    return CoarseTask(face_model, encoder, albedo=albedo)


def build_task(cfg: DetailConfig, face_model) -> DetailTask:
    if not cfg.coarse:
        raise ConfigError("stage 2 needs the stage-1 checkpoint: pass --coarse=runs/coarse/last.pt")
    coarse = load_coarse(cfg.coarse, face_model)
    unet = DetailUNet(UNetConfig(size=cfg.uv_size, ngf=cfg.ngf, norm=cfg.norm, max_mm=cfg.max_mm))
    return DetailTask(coarse, unet, cfg.loss)


def run(cfg: DetailConfig, detect_fn=None) -> TrainResult:
    """Build data and task from ``cfg`` and train (resumes per ``cfg.resume``)."""
    out = Path(cfg.out)
    check_run(cfg)  # run folder name and writability, data folder, checkpoints' contents: before any work
    resume_from = check_run_folder(out, cfg.resume, cfg.init)  # before anything is written
    if resume_from is not None:
        cfg = settle_resume_config(cfg, resume_from)
    suite_hook = SuiteValidation(cfg.eval, "detail", out, coarse_ckpt=cfg.coarse) if cfg.eval.every > 0 else None
    face_model = load_default(cfg.model or None)
    seed_everything(cfg.loop.seed)  # same initial weights on every rank and every run
    task = build_task(cfg, face_model)
    check_weights(cfg, task.model)  # resume/init weights fit the U-Net: before preprocessing
    crop = task.coarse.model.config.in_size
    cache = Path(cfg.data.cache) if cfg.data.cache else out / "cache"
    train_set, val_set, summary = build_datasets(cfg.data, face_model, crop, cfg.loop.seed, cache, detect_fn)
    if int(os.environ.get("RANK", "0")) == 0:
        write_resolved(cfg, out)
    card = make_model_card(face_model=face_model, uv_size=cfg.uv_size, data_summary=summary, config=to_dict(cfg),
                           stage="detail", notes=f"stage 1: {cfg.coarse}")
    if suite_hook is not None:
        suite_hook.card = card
    return train(task, train_set, loop=cfg.loop, optim=cfg.optim, out_dir=out, run_config=to_dict(cfg),
                 model_card=card, val_set=val_set if len(val_set) else None, resume=cfg.resume, init=cfg.init,
                 suite_hook=suite_hook)


def main(argv: list[str] | None = None) -> int:
    return cli_main(DetailConfig(), run, __doc__, "stage 2", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Predict mode: the trained networks in one forward pass (no per-photo optimisation).

A checkpoint folder holds ``coarse.pt`` (stage-1 encoder, required) and ``detail.pt`` (stage-2
U-Net, optional), as written by ``python -m training.coarse`` / ``training.detail`` (their
``last.pt``, copied or linked under these names). Each carries a model card naming the face
model it was trained with; a different face model is refused.

:meth:`Predictor.predict_coarse` does what the stage-1 trainer's decode does
(``training/coarse.py``): the 224² crop is resampled to the encoder's input size, the code is
split into id / exp / tex / SH / pose, the face model gives the vertices, the pose (regressed
in the encoder's crop frame) is rescaled to the 224² crop frame, and the albedo comes from the
model's texture basis or, for a model without one (ICT), from the UV albedo basis named in the
model card (:class:`~backend.nets.albedo.AlbedoBasis`). The result is a
:class:`~backend.fit.coarse.CoarseFitResult`, so the rest of the pipeline (and ``fit_coarse``'s
``init`` in hybrid mode) takes it unchanged.

:meth:`Predictor.predict_detail` does what the stage-2 trainer feeds the U-Net
(``training/detail.py``): photo and coarse render at the encoder's crop size unwrapped into the
face UV tile (the values of :func:`~backend.uvmaps.unwrap_pair`, in one pass), visibility-masked;
with several views the per-view displacements are averaged weighted by each view's visibility.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as Fn

from .camera import Camera, project, scale_pose
from .checkpoint import load_checkpoint, load_weights
from .detail_input import DetailNetInput, blend_views, detail_net_input
from .errors import ModelFormatError, WeightsFormatError, WeightsNotFoundError
from .facemodel import FaceModel
from .fit.coarse import CoarseFitResult
from .nets import AlbedoBasis, DetailUNet, FaceEncoder, build_encoder, build_unet, clamp_expression
from .uvmaps import face_tile_layout
from .validate import check_architecture, one_line

__all__ = ["Predictor", "load_predictor", "COARSE_FILE", "DETAIL_FILE"]

COARSE_FILE = "coarse.pt"
DETAIL_FILE = "detail.pt"

_HOW_TO_TRAIN = (
    "train them with `photohead train coarse --data PHOTOS --out runs/coarse` (then "
    "`photohead train detail --data PHOTOS --coarse runs/coarse/last.pt --out runs/detail`) and copy "
    "runs/coarse/last.pt to {folder}/coarse.pt and runs/detail/last.pt to {folder}/detail.pt "
    "(docs/training.md), or use --mode fit, which needs no weights"
)


@dataclass
class Predictor:
    """Trained networks ready for inference (eval mode, on ``device``).

    - ``encoder``: stage-1 :class:`~backend.nets.FaceEncoder` (input ``encoder.config.in_size``²).
    - ``unet``: stage-2 :class:`~backend.nets.DetailUNet` or None (no ``detail.pt``).
    - ``albedo_spec``: the model card's UV albedo basis (``{"kind": "lowfreq", "k", "uv_size"}``)
      for a face model without a texture basis, or None; built per face model on first use.
    - ``coarse_card`` / ``detail_card``: the checkpoints' model cards (``detail_card`` None
      without ``detail.pt``); ``folder``: where they were read.
    """

    encoder: FaceEncoder
    unet: DetailUNet | None
    albedo_spec: dict | None
    coarse_card: dict
    detail_card: dict | None
    folder: Path
    device: torch.device
    _albedo: AlbedoBasis | None = None

    @property
    def has_detail(self) -> bool:
        return self.unet is not None

    @property
    def in_size(self) -> int:
        """The encoder's input crop side (px)."""
        return int(self.encoder.config.in_size)

    def check_model(self, model: FaceModel) -> None:
        """Raise :class:`~backend.errors.ModelFormatError` unless ``model`` is the face model the
        checkpoints were trained with (same name and vertex count, same basis sizes)."""
        for name, card in ((COARSE_FILE, self.coarse_card), (DETAIL_FILE, self.detail_card)):
            fm = (card or {}).get("face_model") or {}
            if fm and (fm.get("name") != model.name or fm.get("n_verts") != model.n_verts):
                raise ModelFormatError(
                    f"{self.folder / name} was trained with face model {fm.get('name')!r} ({fm.get('n_verts')} "
                    f"vertices), but the loaded face model is {model.name!r} ({model.n_verts} vertices): pass "
                    f"--model for the face model it was trained with, or use checkpoints trained for {model.name!r}"
                )
        cfg = self.encoder.config
        if cfg.n_id != model.n_id or cfg.n_exp != model.n_exp:
            raise ModelFormatError(
                f"{self.folder / COARSE_FILE} regresses {cfg.n_id} identity / {cfg.n_exp} expression coefficients, "
                f"the face model {model.name!r} has {model.n_id} / {model.n_exp}: use checkpoints trained for this model"
            )
        if model.has_texture and cfg.n_tex != model.n_tex:
            raise ModelFormatError(
                f"{self.folder / COARSE_FILE} regresses {cfg.n_tex} texture coefficients, the face model "
                f"{model.name!r} has {model.n_tex}: use checkpoints trained for this model"
            )
        if cfg.n_tex and not model.has_texture and self.albedo_spec is None:
            raise ModelFormatError(
                f"{self.folder / COARSE_FILE} regresses {cfg.n_tex} albedo coefficients but names no albedo basis and "
                f"{model.name!r} has no texture basis: retrain stage 1 with this code"
            )

    def albedo_basis(self, model: FaceModel) -> AlbedoBasis:
        """The stage-1 trainer's UV albedo basis for ``model`` (its UV tiles), built once."""
        spec = self.albedo_spec or {}
        tiles = model.uv_tiles
        if self._albedo is None or self._albedo.mean.shape[1] != spec["uv_size"] * tiles:
            self._albedo = AlbedoBasis.lowfreq(int(spec["k"]), int(spec["uv_size"]), tiles=tiles).to(self.device)
        return self._albedo

    def _encoder_input(self, crops: torch.Tensor) -> torch.Tensor:
        """crops (V,224,224,3) [0,1] → (V,S,S,3) at the encoder's size (area resampling)."""
        S = self.in_size
        if crops.shape[1] == S:
            return crops
        x = Fn.interpolate(crops.permute(0, 3, 1, 2), size=(S, S), mode="area")
        return x.permute(0, 2, 3, 1)

    @torch.no_grad()
    def predict_coarse(self, model: FaceModel, crops: torch.Tensor, shared_expression: bool = True) -> CoarseFitResult:
        """One encoder pass over V aligned crops of one person.

        crops (V,224,224,3) float in [0,1] (:func:`backend.prepare.prepare_view`), on the
        predictor's device. Identity (and albedo) are averaged over the views; the expression
        too when ``shared_expression``. Returns a :class:`CoarseFitResult` in the 224² crop
        frame: id (1,K_id), exp (V,K_exp) clamped to [0,1] as the fit keeps it, pose (V,7) orthographic, sh (V,27), albedo
        (1,A,A·tiles,3) UV map in [0,1] (model without texture basis) or tex (1,K_tex), verts
        (V,N,3) mm, landmarks (V,68,2) crop px; ``history`` is empty (no optimisation).
        """
        if crops.ndim != 4 or crops.shape[-1] != 3 or crops.shape[1] != crops.shape[2]:
            raise ValueError(f"predict_coarse expects square crops (V,S,S,3), got {tuple(crops.shape)}")
        self.check_model(model)
        V, R = crops.shape[0], crops.shape[1]
        x = self._encoder_input(crops.float()).permute(0, 3, 1, 2).contiguous()
        p = self.encoder.decompose(self.encoder(x).float())
        identity = p["id"].mean(0, keepdim=True)
        exp = p["exp"].mean(0, keepdim=True).expand(V, -1) if shared_expression else p["exp"]
        exp = clamp_expression(exp)  # blendshape weights, as the fit keeps them and stage 1 trains them
        verts = model(identity.expand(V, -1), exp)
        k = R / self.in_size  # encoder frame → crop frame (pixel centres fixed: scale f, t)
        pose = scale_pose(p["pose"], k)
        landmarks = project(verts, pose, Camera(R, R))[:, model.landmarks68, :2]
        albedo = tex = None
        if model.has_texture:
            tex = p["tex"].mean(0, keepdim=True)
        elif self.albedo_spec is not None:
            albedo = self.albedo_basis(model)(p["tex"]).mean(0, keepdim=True)
        return CoarseFitResult(
            id=identity, exp=exp.contiguous(), pose=pose, sh=p["sh"].contiguous(), albedo=albedo, tex=tex,
            verts=verts, landmarks=landmarks, history=[],
        )

    @torch.no_grad()
    def predict_detail(self, model: FaceModel, coarse: CoarseFitResult, crops: torch.Tensor,
                       size: int | None = None) -> torch.Tensor:
        """The U-Net's displacement map for V views of one person.

        coarse: the 224² crop-frame coarse result (predicted or fitted); crops (V,224,224,3)
        in [0,1]. Each view's photo and coarse render (at the encoder's crop size, as in
        training) are unwrapped into the face tile; the per-view predictions are averaged,
        weighted by each texel's visibility (texels no view sees: plain mean). ``size``: output
        side (bilinear resampling; default the U-Net's). Returns (1,1,size,size) mm, zero
        outside the face tile's valid texels. Raises WeightsNotFoundError without ``detail.pt``.
        """
        net_input = self.detail_input(model, coarse, crops)
        disp = blend_views(self.unet(net_input.pair, net_input.visible).float(), net_input.visible)
        out = int(size or self.unet.config.size)
        if out != disp.shape[-1]:
            disp = Fn.interpolate(disp, size=(out, out), mode="bilinear", align_corners=False)
        return disp * face_tile_layout(model, out).valid[:, None].to(disp.dtype)

    @torch.no_grad()
    def detail_input(self, model: FaceModel, coarse: CoarseFitResult, crops: torch.Tensor) -> DetailNetInput:
        """The U-Net's input for V views as the stage-2 trainer builds it: the 224² crops
        (V,224,224,3) resampled to the encoder's crop size (:func:`detail_net_input`). Raises
        WeightsNotFoundError without ``detail.pt``."""
        if self.unet is None:
            raise WeightsNotFoundError(
                f"no {DETAIL_FILE} in {self.folder}: the detail stage needs the stage-2 U-Net; "
                + _HOW_TO_TRAIN.format(folder=self.folder)
            )
        self.check_model(model)
        return detail_net_input(model, coarse, self._encoder_input(crops.float()), self.unet.config.size)

    def init_for_fit(self, coarse: CoarseFitResult) -> dict[str, torch.Tensor]:
        """A prediction as ``fit_coarse(init=...)`` takes it (hybrid mode)."""
        init = {"id": coarse.id, "exp": coarse.exp, "pose": coarse.pose, "sh": coarse.sh}
        if coarse.albedo is not None:
            init["albedo"] = coarse.albedo
        if coarse.tex is not None:
            init["tex"] = coarse.tex
        return init


def _read(path: Path, stage: str) -> dict:
    ckpt = load_checkpoint(path)
    card = ckpt.get("model_card") or {}
    if card.get("stage") and card["stage"] != stage:
        raise WeightsFormatError(
            f"{path} holds a stage-{card['stage']!r} checkpoint, expected {stage!r}: "
            f"copy the {stage} run's last.pt to {path.name}"
        )
    if not ckpt.get("arch"):
        raise WeightsFormatError(f"{path} has no architecture description ('arch'): re-save it with the trainers")
    return ckpt


def _build(ckpt: dict, build: Callable[[dict], torch.nn.Module], path: Path, what: str) -> torch.nn.Module:
    """The network of a checkpoint: its architecture checked, built from its ``arch``, its weights
    loaded. Raises :class:`WeightsFormatError` naming ``path`` and ``what`` it should hold (``"a
    stage-1 encoder"``)."""
    check_architecture(ckpt, build, path, what)  # before allocating it
    try:
        net = build(ckpt["arch"])
        load_weights(ckpt, net)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise WeightsFormatError(f"{path}: not {what} checkpoint this code reads ({one_line(exc)})") from None
    return net


def load_predictor(checkpoints_dir: str | Path, device: str | torch.device = "cpu",
                   model: FaceModel | None = None) -> Predictor:
    """Read ``coarse.pt`` (required) and ``detail.pt`` (optional) from ``checkpoints_dir``.

    ``model``: when given, the checkpoints are checked against it right away (otherwise at
    the first prediction). Raises :class:`~backend.errors.WeightsNotFoundError` when the
    folder or ``coarse.pt`` is missing (saying how to make them),
    :class:`~backend.errors.WeightsFormatError` for a checkpoint that does not fit its
    architecture, :class:`~backend.errors.ModelFormatError` for another face model.
    """
    folder = Path(checkpoints_dir).expanduser()
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"checkpoint folder {folder} not found: predict/hybrid mode needs {COARSE_FILE} (and optionally "
            f"{DETAIL_FILE}) there; " + _HOW_TO_TRAIN.format(folder=folder)
        )
    coarse_path = folder / COARSE_FILE
    if not coarse_path.is_file():
        raise WeightsNotFoundError(
            f"no {COARSE_FILE} in checkpoint folder {folder}: " + _HOW_TO_TRAIN.format(folder=folder)
        )
    device = torch.device(device)
    ckpt = _read(coarse_path, "coarse")
    card = ckpt.get("model_card") or {}
    encoder = _build(ckpt, build_encoder, coarse_path, "a stage-1 encoder")
    albedo = None
    basis = card.get("albedo_basis")
    if basis:
        if basis.get("kind") != "lowfreq":
            raise WeightsFormatError(
                f"{coarse_path}: albedo basis of kind {basis.get('kind')!r} cannot be rebuilt at inference (only "
                "'lowfreq'): retrain stage 1 with the default albedo basis"
            )
        if int(basis.get("k", -1)) != encoder.config.n_tex:
            raise WeightsFormatError(
                f"{coarse_path}: its albedo basis has {basis.get('k')} modes but the encoder regresses "
                f"{encoder.config.n_tex} albedo coefficients: the checkpoint is inconsistent, retrain stage 1"
            )
        albedo = dict(basis)
    unet, detail_card = None, None
    detail_path = folder / DETAIL_FILE
    if detail_path.is_file():
        dckpt = _read(detail_path, "detail")
        detail_card = dckpt.get("model_card") or {}
        unet = _build(dckpt, build_unet, detail_path, "a stage-2 U-Net").eval().to(device)
    predictor = Predictor(
        encoder=encoder.eval().to(device), unet=unet, albedo_spec=albedo, coarse_card=card, detail_card=detail_card,
        folder=folder, device=device,
    )
    if model is not None:
        predictor.check_model(model)
    return predictor

"""One :class:`Preset` per quality name: the coarse fit, the detail fit and the exported albedo's
resolution together, resolved once by :func:`resolve_preset` for every caller (CLI, add-on
worker, evaluation)."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import PhotoheadError
from .fit.coarse import CoarseFitConfig
from .fit.detail import DetailFitConfig
from .quality import DEFAULT, DRAFT, HIGH, QUALITY_NAMES

__all__ = ["Preset", "PRESETS", "resolve_preset"]


@dataclass(frozen=True)
class Preset:
    """Settings of one quality.

    - ``coarse``: the stage-1 fit's schedule (``identity`` and ``shared_expression`` are then set
      from the reconstruction's own options);
    - ``detail``: the stage-2 fit's schedule and map size;
    - ``albedo_res``: UV texels per tile of the exported albedo.
    """

    coarse: CoarseFitConfig
    detail: DetailFitConfig
    albedo_res: int


PRESETS: dict[str, Preset] = {
    DRAFT: Preset(
        coarse=CoarseFitConfig(landmark_steps=100, photo_schedule=((112, 40),), identity=False),
        detail=DetailFitConfig(uv_size=128, steps=20),
        albedo_res=256,
    ),
    # 60 steps at 112² and 20 at 224² (each 224² step costs ≈ 2 at 112²): with the solved warm-up the
    # same landmark NME and a lower vertex error than the 70 + 30 with Adam's warm-up
    # (docs/speed.md, "Coarse fit: the photometric schedule"). Detail:
    # 20 steps at lr 0.065, not 40 at 0.05: displacement correlation within 0.5 %, detailed-surface
    # error unchanged (docs/speed.md, "The rest of a head").
    DEFAULT: Preset(coarse=CoarseFitConfig(photo_schedule=((112, 60), (224, 20))),
                    detail=DetailFitConfig(steps=20, lr=0.065), albedo_res=512),
    # L_smooth's weight follows the map size (backend.losses.weights_at_uv_size): ×0.25 at draft's
    # 128², ×4 at high's 512² (a fixed weight let high's map fit photo noise as skin relief).
    HIGH: Preset(
        coarse=CoarseFitConfig(landmark_steps=200, photo_schedule=((112, 60), (224, 120)), albedo_size=48,
                               albedo_smooth=8000.0 * (48 / 32) ** 2),
        detail=DetailFitConfig(uv_size=512, steps=60, render_size=448),
        albedo_res=1024,
    ),
}


def resolve_preset(quality: str) -> Preset:
    """The :class:`Preset` of ``quality``; raises :class:`PhotoheadError` for an unknown name."""
    try:
        return PRESETS[quality]
    except KeyError:
        raise PhotoheadError(f"unknown quality {quality!r}: use {', '.join(QUALITY_NAMES)}") from None

"""Does rendering the parts (eyes, sockets, teeth) in the coarse fit help? (issue 28)

    python -m benchmarks.bench_parts_fit --n 20 [--order random|expressive] [--seed 0]

For N faces_dev photos (research-only, read in place; ground-truth landmarks instead of the
detector), the default preset's coarse fit runs twice, parts off and on
(:class:`backend.fit.parts_term.PartsFitConfig`; L_id off in both, like for like). Each result is
scored at 224² on (a) the skin's L_pixel (the fit's own skin mask, skin-only render) and (b)
L_pixel over the eye/mouth region (:func:`~backend.fit.parts_term.landmark_region`): the skin-only
render (background through the holes), the parts-off fit rendered with its parts at the default
colours, the parts-on fit with its fitted colours and gaze. Writes
benchmarks/results/parts_fit[_<order>].json (numbers only; no photo leaves runs/).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from .common import write_result

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces_dev"


def score(model, fit, crop, lms, skin, colours) -> dict[str, float]:
    """Skin and region L_pixel of a coarse fit (crop (1,S,S,3), lms (1,68,2), skin (1,S,S))."""
    from backend.camera import Camera
    from backend.fit.parts_term import PartsFitConfig, PartsTerm
    from backend.losses import pixel_loss
    from backend.render.renderer import RenderSettings, render

    S = crop.shape[1]
    settings = RenderSettings(u_range=(0.0, float(model.uv_tiles)))
    face_tri = model.face_vertex_mask[model.faces].all(-1)
    with torch.no_grad():
        rend = render(fit.verts, model.faces, fit.pose, Camera(S, S), fit.sh, texture=fit.albedo, uv=model.uv,
                      faces_uv=model.faces_uv, settings=settings)
        visible = face_tri[rend.face_idx.clamp_min(0)] & rend.mask
        term = PartsTerm(model, PartsFitConfig(enabled=True), lms, 1)
        region = term.region(S, S)
        if colours is not None:
            term.colours.copy_(colours)
        rend_p = term.render(fit.verts, fit.id, fit.exp, fit.pose, Camera(S, S), fit.sh, fit.albedo, settings)
        return {
            "skin": float(pixel_loss(crop, rend.image, skin * visible.float())),
            "region_skin_only": float(pixel_loss(crop, rend.image, region)),
            "region_parts": float(pixel_loss(crop, rend_p.image, region)),
            "region_pixels": float(region.sum()),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--order", default="random", choices=["random", "expressive"])
    ap.add_argument("--dev", type=Path, default=DEV)
    args = ap.parse_args(argv)
    from evaluation.readers import read_landmarks_json

    from backend.facemodel import load_default
    from backend.fit.coarse import fit_coarse
    from backend.fit.parts_term import PartsFitConfig
    from backend.preset import resolve_preset
    from backend.prepare import prepare_view

    from .bench_detail_real import _is_grey, dev_order

    lms_all = read_landmarks_json(args.dev / "landmarks.json")
    names = sorted(n for n in lms_all if (args.dev / "images" / n).exists())
    model = load_default()
    base = dataclasses.replace(resolve_preset("default").coarse, identity=False)
    arms = {"off": base, "on": dataclasses.replace(base, parts=PartsFitConfig(enabled=True))}
    rows = {}
    for k in dev_order(names, lms_all, args.order, args.seed):
        if len(rows) >= args.n:
            break
        name = names[k]
        from PIL import Image

        if _is_grey(np.asarray(Image.open(args.dev / "images" / name).convert("RGB"))):
            continue
        view = prepare_view(args.dev / "images" / name, landmarks68=np.asarray(lms_all[name], np.float64))
        t = lambda a: torch.from_numpy(np.asarray(a))[None].float()  # noqa: E731
        crop, lms, skin = t(view.crop), t(view.crop_landmarks), t(view.skin_mask)
        row = {}
        for arm, cfg in arms.items():
            torch.manual_seed(0)
            t0 = time.process_time()
            fit = fit_coarse(model, crop, lms, skin, cfg)
            row[arm] = dict(score(model, fit, crop, lms, skin, fit.parts_colours), cpu_s=time.process_time() - t0)
        rows[name] = row
        print(name, {a: {k2: round(v, 2) for k2, v in r.items()} for a, r in row.items()}, flush=True)
    summary = {}
    for arm in arms:
        for key in ("skin", "region_skin_only", "region_parts", "cpu_s"):
            summary[f"{arm}_{key}"] = float(np.mean([r[arm][key] for r in rows.values()]))
    summary["on_better_region"] = int(sum(r["on"]["region_parts"] < r["off"]["region_parts"] for r in rows.values()))
    summary["n"] = len(rows)
    print(summary)
    write_result("parts_fit" + ("" if args.order == "random" else f"_{args.order}"),
                 {"summary": summary, "photos": rows, "order": args.order, "seed": args.seed})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Clamp the regressed expression in training too, or in neither? (issue 29, item 3)

    python -m benchmarks.bench_exp_clamp [--steps 400] [--train 300] [--test 64] [--size 64] [--seed 0]

Predict mode clamps the encoder's ICT blendshape weights to [0, 1] (the fit keeps them there);
until now stage 1 trained on the unclamped mesh. This trains the same small stage-1 encoder
(light, ``--size``² synthetic faces with known coefficients, L_pixel + L_lm + R_param, same seed
and data order) three ways — decode with no clamp, a hard clamp (the trainer's default since this
measurement) and a straight-through clamp (clamped forward, identity gradient) — and scores each on held-out synthetic faces, predicting with and without
the clamp at inference:

- ``exp_err_mm``: mean distance over the face-region vertices between the predicted and the
  true expression offsets (identity set to the truth: the expression's share of the error);
- ``vert_err_mm``: the same for the whole predicted shape (identity and expression);
- ``lm_rmse_px224``: landmark RMSE of the predicted mesh and pose, px of the 224² crop.

CPU, one torch thread; writes ``benchmarks/results/exp_clamp.json`` (runs of other ``--seed``
values with the same settings are kept beside this one). A small model trained for
minutes: it ranks the three choices for this recipe, it does not predict a full run's numbers.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from .common import RESULTS_DIR as RESULTS, write_result


def _score(task, test, clamp: bool) -> dict[str, float]:
    from backend.camera import project
    from backend.align import CROP_SIZE
    from backend.nets import clamp_expression

    fm = task.face_model
    enc = task.model.eval()
    face = fm.face_vertex_mask
    with torch.no_grad():
        p = enc.decompose(enc(test.images).float())
        exp = clamp_expression(p["exp"]) if clamp else p["exp"]
        true = test.params
        exp_off = lambda e: torch.einsum("bk,kvc->bvc", e, fm.exp_basis)[:, face]  # noqa: E731
        exp_err = (exp_off(exp) - exp_off(true["exp"])).norm(dim=-1).mean()
        verts = fm(p["id"], exp)
        vert_err = (verts[:, face] - fm(true["id"], true["exp"])[:, face]).norm(dim=-1).mean()
        lm = project(verts, p["pose"], task.camera)[:, fm.landmarks68, :2]
        k = CROP_SIZE / test.images.shape[-1]
        lm_rmse = ((lm - test.landmarks) * k).pow(2).sum(-1).mean().sqrt()
    return {"exp_err_mm": float(exp_err), "vert_err_mm": float(vert_err), "lm_rmse_px224": float(lm_rmse),
            "exp_outside_range_fraction": float(((p["exp"] < 0) | (p["exp"] > 1)).float().mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--train", type=int, default=300)
    ap.add_argument("--test", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0, help="training seed (weights, data order); the data sets stay fixed")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from backend.facemodel import load_default
    from training.coarse import build_task
    from training.config import CoarseConfig, apply_overrides
    from training.data import SyntheticFaceDataset
    from training.loop import seed_everything, train

    fm = load_default()
    train_set = SyntheticFaceDataset(fm, n=args.train, size=args.size, seed=0)
    test = SyntheticFaceDataset(fm, n=args.test, size=args.size, seed=1)
    cfg = apply_overrides(CoarseConfig(), {
        "data.crop_size": args.size, "encoder.arch": "light", "use_identity": False, "albedo_k": 4, "albedo_uv": 32,
        "loop.steps": args.steps, "loop.batch_size": 10, "loop.device": "cpu", "loop.num_workers": 0,
        "loop.progress": False, "loop.log_every": 0, "loop.image_every": 0, "loop.val_every": 0, "loop.ckpt_every": 0,
        "optim.lr": args.lr, "loop.seed": args.seed,
    })
    runs = {}
    for mode in ("none", "hard", "straight_through"):
        seed_everything(cfg.loop.seed)
        task = build_task(cfg, fm)
        task.exp_clamp = mode
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            res = train(task, train_set, loop=cfg.loop, optim=cfg.optim, out_dir=out)
        tail = res.history[-20:]
        runs[mode] = {
            "train_s": round(time.perf_counter() - t0, 1),
            "final_train_loss_mean_last_20": sum(h["total"] for h in tail) / len(tail),
            "predict_clamped": _score(task, test, clamp=True),
            "predict_unclamped": _score(task, test, clamp=False),
        }
        print(mode, runs[mode], flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("seed", "no_write")}
    by_seed = {str(args.seed): runs}
    old = RESULTS / "exp_clamp.json"
    if old.is_file():  # other seeds of the same settings are kept: one file, one row per seed
        prev = json.loads(old.read_text())
        if prev.get("settings") == settings:
            by_seed = {**prev.get("runs_by_seed", {}), **by_seed}
    result = {"settings": settings, "runs_by_seed": dict(sorted(by_seed.items())),
              "notes": "train mode = how stage 1 decoded the expression; predict_* = with/without the clamp at inference"}
    if not args.no_write:
        write_result("exp_clamp", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

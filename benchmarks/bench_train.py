"""Training throughput (images/s) of stage 1 and stage 2 on CPU (or CUDA) at the paper's batch 10.

    python -m benchmarks.bench_train            # CPU, paper sizes (224² crops, 256² UV), slow on CPU
    python -m benchmarks.bench_train --quick    # small sizes, a smoke run
    python -m benchmarks.bench_train --device cuda [--amp]   # → train_cuda[_amp].json

One "step" is a full optimizer step: forward (encoder → face model → renderer → losses; stage 2
also the frozen stage-1 forward, UV unwrap, U-Net, displaced dense-mesh render), backward and
Adam. Batches are synthetic faces (:class:`training.data.SyntheticFaceDataset`), so data loading
is excluded. Writes ``benchmarks/results/train.json`` (on a GPU ``train_cuda.json``, with ``--amp``
``train_cuda_amp.json``).
"""
from __future__ import annotations

import argparse

import torch

from backend.errors import PhotoheadError
from backend.facemodel import load_default
from backend.nets import DetailUNet, UNetConfig
from benchmarks.common import time_call, write_result
from training.coarse import build_task as build_coarse
from training.config import CoarseConfig, DetailConfig, apply_overrides
from training.data import SyntheticFaceDataset
from training.detail import DetailTask


def _step_fn(task, batch, device, amp: bool):
    params = [p for p in task.model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=False)  # bfloat16 autocast needs no loss scaling

    def step():
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else torch.autocast("cpu", enabled=False)
        with ctx:
            res = task.step(task.model, batch, False)
        total = sum(res.losses.values())
        opt.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(opt)
        scaler.update()
        return total

    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="64² crops, 64² UV, light encoder only")
    ap.add_argument("--amp", action="store_true", help="mixed precision (CUDA, bfloat16 autocast)")
    ap.add_argument("--out", help="result name (default: train, train_cuda, train_cuda_amp)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    amp = args.amp and dev.type == "cuda"
    fm = load_default()
    crop = 64 if args.quick else 224
    uv = 64 if args.quick else 256
    ngf = 16 if args.quick else 64
    data = SyntheticFaceDataset(fm, n=args.batch, size=crop, seed=0)
    batch = {k: v.to(dev) for k, v in torch.utils.data.default_collate([data[i] for i in range(args.batch)]).items()}
    cases = {}
    torch.manual_seed(0)
    identity = True
    archs = ["light"] if args.quick else ["light", "vgg16"]
    for arch in archs:
        cfg = apply_overrides(CoarseConfig(), {"encoder.arch": arch, "data.crop_size": crop, "use_identity": identity})
        try:
            task = build_coarse(cfg, fm).to(dev)
        except PhotoheadError as exc:  # identity weights missing: measure without L_id
            print(f"identity net unavailable ({exc}); stage 1 without L_id")
            identity = False
            cfg = apply_overrides(cfg, {"use_identity": False})
            task = build_coarse(cfg, fm).to(dev)
        stats = time_call(_step_fn(task, batch, dev, amp), repeats=args.repeats, warmup=1, device=args.device)
        cases[f"stage1_{arch}_{crop}"] = {
            "arch": arch, "crop": crop, "batch": args.batch, "identity_loss": identity, **stats,
            "images_per_s": args.batch / stats["median_s"],
        }
        print(f"stage 1 {arch:5s} {crop}²: {args.batch / stats['median_s']:.2f} images/s ({stats['median_s']:.2f} s/step)")
        if arch == "light":
            coarse_task = task
    # stage 2: frozen (light) stage 1 + U-Net at the paper's 256² UV
    coarse_task.identity_net = None
    coarse_task.model.eval().requires_grad_(False)
    unet = DetailUNet(UNetConfig(size=uv, ngf=ngf))
    task2 = DetailTask(coarse_task, unet, DetailConfig().loss).to(dev)
    stats = time_call(_step_fn(task2, batch, dev, amp), repeats=args.repeats, warmup=1, device=args.device)
    cases[f"stage2_unet{uv}_ngf{ngf}"] = {
        "uv": uv, "ngf": ngf, "crop": crop, "batch": args.batch, **stats, "images_per_s": args.batch / stats["median_s"],
    }
    print(f"stage 2 U-Net {uv}² ngf {ngf}: {args.batch / stats['median_s']:.2f} images/s ({stats['median_s']:.2f} s/step)")
    name = args.out or ("train" if dev.type == "cpu" else f"train_{dev.type}" + ("_amp" if amp else ""))
    path = write_result(name, {
        "device": str(dev), "amp": amp, "quick": args.quick, "cases": cases,
        "note": "wall-clock on a shared machine: other jobs inflate CPU numbers (see machine.loadavg_1m)",
    }, device=args.device)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Renderer benchmark: forward and forward+backward time and peak memory.

    python -m benchmarks.bench_render                       # CPU, 1 and 2 threads
    python -m benchmarks.bench_render --device cuda         # on a GPU
    python -m benchmarks.bench_render --threads 2 --repeats 5

Cases (targets on a 2-core CPU in brackets):
- ``face_224`` / ``face_512``: the default face model (22k triangles), textured and SH-lit,
  ``render()`` at 224² [fwd+bwd ≤ 60 ms] and 512²; also ``raster_face_224``: rasterize +
  interpolate UV only.
- ``grid_224``: a dense UV-grid mesh of 256² texels (2·256² ≈ 131k triangles) at 224²:
  rasterize + interpolate UV + texture [fwd+bwd ≤ 250 ms].
- ``uv_512``: UV-space rasterisation of the face tile at 512² [≤ 150 ms] (forward only:
  it has no inputs to differentiate; cache it in real use).

Each case runs in a fresh subprocess so its peak memory (CPU: peak RSS, CUDA: peak
allocated) is its own. Results go to ``benchmarks/results/render.json`` (or
``render_cuda.json`` for ``--device cuda``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASES = ["raster_face_224", "face_224", "face_512", "grid_224", "uv_512"]
TARGETS_MS = {"face_224": 60.0, "grid_224": 250.0, "uv_512": 150.0}


def _run_case(name: str, device: str, repeats: int) -> dict:
    import torch

    from backend.camera import Camera, default_pose, project
    from backend.facemodel import load_default
    from backend.lighting import sh_directional
    from backend.render import RenderSettings, interpolate, rasterize, rasterize_uv, render, sample_texture
    from backend.render.primitives import grid_mesh
    from benchmarks.common import peak_rss_mb, time_call

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    info: dict = {}

    if name in ("face_224", "face_512", "raster_face_224", "uv_512"):
        model = load_default().to(dev)
        faces, uv, faces_uv = model.faces, model.uv, model.faces_uv
        verts0 = model.mean[None]
        info["triangles"] = int(faces.shape[0])
    if name == "grid_224":
        v, faces, uv = grid_mesh(257, size=220.0)
        v, faces, uv = v.to(dev), faces.to(dev), uv.to(dev)
        faces_uv = faces
        verts0 = v[None]
        info["triangles"] = int(faces.shape[0])

    if name == "uv_512":
        def fwd():
            return rasterize_uv(uv, faces_uv, 512, 512, (0.0, 1.0))

        bwd = None
    else:
        size = 512 if name == "face_512" else 224
        cam = Camera(size, size)
        pose = default_pose(1, cam, device=dev)
        pose[0, 2] = 0.3
        tex_w = 256 if name == "grid_224" else 512
        tex = torch.rand(256, tex_w, 3, generator=gen).to(dev)
        u_range = (0.0, 1.0) if name == "grid_224" else (0.0, 2.0)
        sh = sh_directional(torch.tensor([[0.4, 0.3, 1.0]], device=dev), 0.8, 0.3)
        verts = verts0.clone().requires_grad_(True)
        texture = tex.clone().requires_grad_(True)

        if name in ("face_224", "face_512"):
            settings = RenderSettings(u_range=u_range)

            def forward():
                return render(verts, faces, pose, cam, sh, texture=texture, uv=uv, faces_uv=faces_uv,
                              settings=settings).image
        else:
            def forward():
                sv = project(verts, pose, cam)
                fr = rasterize(sv, faces, size, size)
                uv_pix = interpolate(uv, fr.face_idx, fr.bary, faces_uv)
                if name == "raster_face_224":
                    return uv_pix
                return sample_texture(texture, uv_pix, u_range, fr.mask)

        def fwd():
            with torch.no_grad():
                return forward()

        def bwd():
            out = forward()
            out.square().sum().backward()
            verts.grad = None
            texture.grad = None
        info["pixels"] = size * size

    fwd()  # warm-up, and the memory baseline includes the inputs
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base_rss = peak_rss_mb()
    res = {"case": name, **info}
    res["forward"] = time_call(fwd, repeats=repeats, warmup=1, device=device)
    if bwd is not None:
        res["forward_backward"] = time_call(bwd, repeats=repeats, warmup=1, device=device)
    if dev.type == "cuda":
        res["peak_mem_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        res["peak_mem_kind"] = "cuda max_memory_allocated above inputs"
    else:
        res["peak_mem_mb"] = peak_rss_mb() - base_rss
        res["peak_rss_mb"] = peak_rss_mb()
        res["peak_mem_kind"] = "process peak RSS growth during the timed runs (after one warm-up)"
    target = TARGETS_MS.get(name)
    if target is not None:
        key = "forward_backward" if bwd is not None else "forward"
        res["target_ms"] = target
        res["target_on"] = key
        res["meets_target"] = res[key]["median_s"] * 1e3 <= target
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (CPU)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args(argv)

    import torch

    if args.one:
        torch.set_num_threads(int(args.threads))
        print(json.dumps(_run_case(args.one, args.device, args.repeats)))
        return

    from benchmarks.common import write_result

    threads = [int(t) for t in args.threads.split(",")] if args.device == "cpu" else [torch.get_num_threads()]
    results = []
    for n in threads:
        for case in args.cases.split(","):
            cmd = [sys.executable, "-m", "benchmarks.bench_render", "--one", case, "--device", args.device,
                   "--threads", str(n), "--repeats", str(args.repeats)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["threads"] = n
            results.append(res)
            fb = res.get("forward_backward", {}).get("median_s")
            print(f"{case:16s} threads={n} fwd {res['forward']['median_s'] * 1e3:7.1f} ms"
                  + (f"  fwd+bwd {fb * 1e3:7.1f} ms" if fb else "")
                  + f"  peak {res['peak_mem_mb']:.0f} MB", flush=True)
    name = "render" if args.device == "cpu" else f"render_{args.device.split(':')[0]}"
    path = write_result(name, {
        "note": "median of repeats; CPU timings on a shared, loaded machine are inflated. "
                "torch intra-op threads >1 suffer badly when other processes load the cores.",
        "targets_ms": TARGETS_MS,
        "results": results,
    }, device=args.device)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

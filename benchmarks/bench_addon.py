"""Blender add-on overhead: time from the Reconstruct button to the finished object vs the
reconstruction itself (issue 8 target: ≤ reconstruct time + 2 s).

    python -m benchmarks.bench_addon [--quality draft]

"button" = spawn the worker process (imports torch + backend, loads the model), reconstruct,
save the Head, load it on the main thread and build the Blender objects (bpy module), i.e.
``addon.job.Job`` + ``addon.scene.build_head_objects`` exactly as the operator does.
"reconstruct" = ``backend.reconstruct.reconstruct`` in a fresh Python process (imports, model and
detector loading included: what running it yourself costs), and, for reference, in a warm one.
Writes benchmarks/results/addon.json.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .common import write_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quality", default="draft")
    args = ap.parse_args(argv)

    import bpy  # noqa: F401  (Blender as a module)
    import matplotlib.cbook

    from addon.job import Job
    from addon.scene import BuildOptions, build_head_objects
    from backend.export import load_head
    from backend.reconstruct import ReconstructConfig, reconstruct

    tmp = Path(tempfile.mkdtemp(prefix="photohead-bench-"))
    photo = tmp / "grace_hopper.jpg"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh, open(photo, "wb") as out:
        shutil.copyfileobj(fh, out)
    config = {"quality": args.quality, "device": "cpu"}

    reconstruct([str(photo)], ReconstructConfig(**config))  # warm-up (model, dlib, identity caches)
    t = time.perf_counter()
    reconstruct([str(photo)], ReconstructConfig(**config))
    t_reconstruct = time.perf_counter() - t

    import subprocess

    cold = (
        "import sys; from backend.reconstruct import ReconstructConfig, reconstruct; "
        f"reconstruct([{str(photo)!r}], ReconstructConfig(quality={args.quality!r}, device='cpu'))"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", cold], check=True, env=dict(os.environ))
    t_cold = time.perf_counter() - t

    t = time.perf_counter()
    job = Job([str(photo)], config, env={"PHOTOHEAD_MODEL_PATH": os.environ.get("PHOTOHEAD_MODEL_PATH", "")})
    job.start()
    state = job.wait(timeout=1800)
    t_worker = time.perf_counter() - t
    if state.status != "DONE":
        raise RuntimeError(f"job failed: {state.message}")
    t2 = time.perf_counter()
    head = load_head(state.result_path)
    build_head_objects(head, BuildOptions(cameras=True, pack_images=True))
    t_apply = time.perf_counter() - t2
    t_button = time.perf_counter() - t
    job.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "quality": args.quality,
        "reconstruct_cold_process_s": t_cold,
        "reconstruct_warm_s": t_reconstruct,
        "button_to_object_s": t_button,
        "worker_s": t_worker,
        "apply_on_main_thread_s": t_apply,
        "overhead_vs_cold_s": t_button - t_cold,
        "overhead_vs_warm_s": t_button - t_reconstruct,
        "target_overhead_s": 2.0,
    }
    print(result)
    write_result("addon", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

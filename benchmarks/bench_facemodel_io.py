"""Face-model I/O timings: the numpy OBJ reader on ICT's 26,719-vertex OBJ, the ICT converter
on the raw sample, and loading the default npz.

Run: ``python -m benchmarks.bench_facemodel_io`` → ``benchmarks/results/facemodel_io.json``.
Needs the shared ICT model folder (``PHOTOHEAD_MODEL_PATH`` or ``../shared/models``).
"""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.common import time_call, write_result


def _ict_folder() -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared" / "models"
    for entry in [*os.environ.get("PHOTOHEAD_MODEL_PATH", "").split(os.pathsep), str(shared)]:
        if entry and (Path(entry) / "ict_facekit" / "raw_sample").is_dir():
            return Path(entry) / "ict_facekit"
    raise SystemExit("ICT model folder with raw_sample/ not found; set PHOTOHEAD_MODEL_PATH")


def main() -> Path:
    from backend.facemodel import load_model
    from backend.facemodel.ict_convert import ICTConvertSettings, convert_ict
    from backend.facemodel.npz import load_npz
    from backend.facemodel.objio import read_obj, read_obj_vertices

    ict = _ict_folder()
    neutral = ict / "raw_sample" / "generic_neutral_mesh.obj"
    settings = ICTConvertSettings(n_identity=2, expressions=["jawOpen", "eyeBlink_L"])
    cases = {
        "read_obj_ict_26719v": time_call(lambda: read_obj(neutral), repeats=5, warmup=1),
        "read_obj_vertices_ict_26719v": time_call(lambda: read_obj_vertices(neutral), repeats=5, warmup=1),
        "convert_ict_raw_sample_5_objs": time_call(lambda: convert_ict(ict / "raw_sample", settings), repeats=3, warmup=1),
        "load_npz_ict_head": time_call(lambda: load_npz(ict / "ict_head.npz"), repeats=3, warmup=1),
        "load_model_ict_head": time_call(lambda: load_model(ict / "ict_head.npz"), repeats=3, warmup=1),
    }
    path = write_result("facemodel_io", {
        "cases": cases,
        "note": "CPU wall-clock seconds on a shared 2-core machine (other jobs running: numbers are inflated)",
    })
    for name, stats in cases.items():
        print(f"{name:34s} median {stats['median_s'] * 1000:8.1f} ms")
    return path


if __name__ == "__main__":
    print(main())

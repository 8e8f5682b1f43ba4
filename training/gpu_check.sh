#!/usr/bin/env bash
# GPU training numbers in under 5 minutes on a lent GPU (issue 29): the dev photos' training cache
# through stage 1 and stage 2 at a small size with throughput, and the synthetic initialiser's
# renders and supervised stage 1 at 224².
#
#   bash training/gpu_check.sh pack "$FACES_DEV" [N]   # here, on the CPU (needs dlib): makes .gpu_check/
#   bash training/gpu_check.sh run                      # on the GPU machine, from the repository root
#   bash training/gpu_check.sh dry                      # `run` on the CPU at toy sizes (checks the script)
#
# `pack` runs `photohead train prepare` on N (default 100) dev photos into a 224² cache (the GPU
# image has no dlib, so preparation happens here; its speed per core is in docs/training.md) and
# copies the face model and, when installed, the identity network's weights beside it, all into
# .gpu_check/ (git-ignored: research-only data, never commit it). With the
# device tool: run(command="bash training/gpu_check.sh run", carry=[".gpu_check"], timeout_s=420).
# `run` writes gpu_check.json (steps, seconds, images/s per stage) and the logs into $OUT (or
# .gpu_check/out) and the initialiser's coarse.pt (light encoder, a few MB) beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.gpu_check
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python

case "${1:-}" in
pack)
    FACES=${2:?usage: gpu_check.sh pack FACES_DEV [N]}
    N=${3:-100}
    [ -d "$FACES/images" ] || { echo "gpu_check.sh: $FACES/images is not a folder (pass the dev photos' root)" >&2; exit 2; }
    mkdir -p "$G/photos" "$G/models/ict_facekit"
    photos=("$FACES"/images/*.jpg)
    for f in "${photos[@]:0:$N}"; do ln -sf "$f" "$G/photos/"; done
    MODEL_DIR=${PHOTOHEAD_MODEL_PATH:-$HOME/.cache/photohead/models}
    cp "$MODEL_DIR/ict_facekit/ict_head.npz" "$MODEL_DIR/ict_facekit/LICENSE" "$G/models/ict_facekit/"
    IDW=$($PY -c "import importlib.util as u, os; print(os.path.dirname(u.find_spec('face_recognition_models').origin))" \
        2>/dev/null || true)
    if [ -n "$IDW" ]; then
        mkdir -p "$G/site/face_recognition_models/models" && touch "$G/site/face_recognition_models/__init__.py"
        cp "$IDW/models/dlib_face_recognition_resnet_model_v1.dat" "$G/site/face_recognition_models/models/"
    fi
    OMP_NUM_THREADS=1 nice -n 10 $PY -m training.prepare --data "$G/photos" --cache "$G/cache224" \
        --data.shard_size=40 --data.workers=2 --progress=false
    rm -rf "$G/photos"  # the cache holds what training reads; the links would not travel
    du -sh "$G"
    ;;
run|dry)
    OUT=${OUT:-$G/out}
    W=${TMPDIR:-/tmp}/gpu_check
    rm -rf "$W" && mkdir -p "$OUT" "$W"
    export PHOTOHEAD_MODEL_PATH="$PWD/$G/models" PYTHONPATH="$PWD:$PWD/$G/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
    if [ "$1" = run ]; then
        DEV="--loop.device=cuda --loop.amp=true --loop.num_workers=4"
        B=32; S1=150; S2=60; NSYN=960; SSUP=400; CROP=224; UV=256; NGF=64; ARCH=vgg16; SYNW=16
    else
        DEV="--loop.device=cpu --loop.num_workers=0"
        B=2; S1=2; S2=2; NSYN=8; SSUP=2; CROP=64; UV=32; NGF=8; ARCH=light; SYNW=1
    fi
    ID=false; [ -d "$G/site/face_recognition_models" ] && ID=true
    COMMON="$DEV --loop.progress=false --loop.image_every=0 --loop.log_every=10 --loop.batch_size=$B --data.val_count=16"
    (nvidia-smi -L || true; $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())") \
        > "$OUT/env.txt" 2>&1
    t() { local name=$1; shift; local t0; t0=$(date +%s.%N)
          "$@" > "$OUT/$name.log" 2>&1 || { echo "$name failed (see $OUT/$name.log)"; tail -20 "$OUT/$name.log"; exit 1; }
          awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$name" 'BEGIN { print n, b - a }' >> "$W/times.txt"; }
    CACHE="$G/cache224"
    if [ "$1" = dry ] || [ ! -f "$CACHE/manifest.json" ]; then  # dry: the cache at the toy crop size
        CACHE="$W/synth_dev"; t synth_dev $PY -m training.synth --cache "$CACHE" --n 24 --data.crop_size=$CROP \
            --data.workers=1 --progress=false
    fi
    # 1. stage 1 on the dev photos (paper's encoder at 224² on the GPU), 2. stage 2 from it
    t coarse $PY -m training.coarse --cache "$CACHE" --out "$W/coarse" --data.crop_size=$CROP \
        --encoder.arch=$ARCH --use_identity=$ID --loop.steps=$S1 --loop.val_every=$S1 --loop.ckpt_every=$S1 $COMMON
    t detail $PY -m training.detail --cache "$CACHE" --coarse "$W/coarse/last.pt" --out "$W/detail" \
        --uv_size=$UV --ngf=$NGF --loop.steps=$S2 --loop.val_every=$S2 --loop.ckpt_every=$S2 $COMMON
    # 3. the synthetic initialiser at GPU size: renders (CPU processes), then supervised stage 1
    t synth $PY -m training.synth --cache "$W/synth" --n $NSYN --data.crop_size=$CROP --data.shard_size=60 \
        --data.workers=$SYNW --progress=false
    t init_sup $PY -m training.coarse --cache "$W/synth" --out "$W/init_sup" --data.crop_size=$CROP \
        --encoder.arch=light --encoder.width=0.5 --use_identity=false --supervised=10 --optim.lr=1e-3 --loop.steps=$SSUP \
        --loop.val_every=$SSUP --loop.ckpt_every=$SSUP $COMMON
    cp "$W/init_sup/last.pt" "$OUT/coarse.pt"
    $PY - "$W" "$OUT" "$B" "$NSYN" <<'EOF'
import json, sys
from pathlib import Path
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
w, out, batch, nsyn = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
times = dict((l.split()[0], float(l.split()[1])) for l in (w / "times.txt").read_text().splitlines())
res = {"batch": batch, "seconds": times, "synth_faces_per_s": nsyn / times["synth"], "stages": {}}
for name in ("coarse", "detail", "init_sup"):
    ea = EventAccumulator(str(w / name / "tb"), size_guidance={"scalars": 0}); ea.Reload()
    tags = ea.Tags()["scalars"]
    ips = [e.value for e in ea.Scalars("train/images_per_s")] if "train/images_per_s" in tags else []
    last = {t: round(ea.Scalars(t)[-1].value, 4) for t in tags if t.startswith(("val/", "train/"))}
    res["stages"][name] = {"images_per_s_median": sorted(ips)[len(ips) // 2] if ips else None, "last": last}
(out / "gpu_check.json").write_text(json.dumps(res, indent=1) + "\n")
print(json.dumps({k: v for k, v in res.items() if k != "stages"}), {k: v["images_per_s_median"] for k, v in res["stages"].items()})
EOF
    ;;
*)
    echo "usage: gpu_check.sh pack FACES_DEV [N] | run | dry" >&2; exit 2 ;;
esac

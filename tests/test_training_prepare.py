"""``photohead train prepare``: CelebA / FFHQ / folder layouts, one writer per shard across ranks,
resume, the rejects report, and the trainers reading a prepared cache. A fake detector, tiny photos."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from test_training_data import FakeDetector
from training.config import DataConfig
from training.data import CachedFaceDataset, PreprocessSettings, prepared_cache
from training.prepare import PrepareError, list_photos, main, prepare_cache


def _png(path, tag):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((160, 160, 3), 128, np.uint8)
    img[..., 0] = tag
    Image.fromarray(img).save(path)


def _celeba(root):
    """7 photos: 5 train (one of them missing on disk, one without a face), 1 val, 1 test."""
    names = {"000001.png": (0, 10), "000002.png": (0, 10), "000003.png": (0, 40), "000004.png": (0, 10),
             "000005.png": (0, None), "000006.png": (1, 10), "000007.png": (2, 10)}
    lines = []
    for name, (split, tag) in names.items():
        if tag is not None:
            _png(root / "img_align_celeba" / name, tag)
        lines.append(f"{name} {split}")
    (root / "Eval").mkdir(parents=True)
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def test_celeba_partition_and_ffhq_index_splits(tmp_path):
    _celeba(tmp_path / "celeba")
    train = list_photos(tmp_path / "celeba")  # auto: celeba, train
    assert [p[-10:] for p in train] == ["000001.png", "000002.png", "000003.png", "000004.png", "000005.png"]
    assert [p[-10:] for p in list_photos(tmp_path / "celeba", split="val")] == ["000006.png"]
    assert len(list_photos(tmp_path / "celeba", "celeba", "all")) == 7
    for i in (0, 1, 59999, 60000):
        _png(tmp_path / "ffhq" / "images1024x1024" / f"{i // 1000 * 1000:05d}" / f"{i:05d}.png", 10)
    assert [p[-9:] for p in list_photos(tmp_path / "ffhq")] == ["00000.png", "00001.png", "59999.png"]
    assert [p[-9:] for p in list_photos(tmp_path / "ffhq", split="val")] == ["60000.png"]
    with pytest.raises(PrepareError, match="no 'train' split"):
        list_photos(tmp_path / "ffhq" / "images1024x1024" / "00000", "folder", "train")
    with pytest.raises(PrepareError, match="list_eval_partition"):
        list_photos(tmp_path / "ffhq", "celeba")


def test_ranks_write_disjoint_shards_resume_and_report_rejects(tmp_path):
    _celeba(tmp_path / "celeba")
    files = list_photos(tmp_path / "celeba")
    cache = tmp_path / "cache"
    st = PreprocessSettings(crop_size=32, min_face_px=40, shard_size=2, workers=1)
    det, seen = FakeDetector(), []
    ticks = []
    # 5 photos in 3 shards: rank 0 of 2 writes shards 0 and 2, rank 1 shard 1
    assert prepare_cache(files, cache, st, detect_fn=det, rank=0, world=2, progress=lambda d, t: ticks.append((d, t))) is None
    assert det.calls == 2 and ticks[0] == (0, 3) and ticks[-1] == (3, 3)  # the missing photo is not detected
    assert sorted(p.name for p in cache.glob("shard_*.json")) == ["shard_00000.json", "shard_00002.json"]
    assert not (cache / "report.json").exists()
    report = prepare_cache(files, cache, st, detect_fn=det, rank=1, world=2)
    assert det.calls == 4  # each readable photo detected once in all
    assert report == json.loads((cache / "report.json").read_text())
    assert report["kept"] == 3 and report["rejected"] == {"unreadable": 1, "no_face": 1, "too_small": 0, "low_score": 0}
    rejects = json.loads((cache / "rejects.json").read_text())
    assert [(r["photo"][-10:], r["reason"]) for r in rejects] == [("000003.png", "no_face"), ("000005.png", "unreadable")]
    # resumable: nothing left to do for either rank; a lost shard is redone by its writer only
    (cache / "shard_00001.json").unlink()
    assert prepare_cache(files, cache, st, detect_fn=det, rank=0, world=2) is None and det.calls == 4
    assert prepare_cache(files, cache, st, detect_fn=det, rank=1, world=2)["kept"] == 3 and det.calls == 6
    assert len(CachedFaceDataset(cache)) == 3
    with pytest.raises(PrepareError, match="other photos"):
        prepare_cache(files[:3], cache, st, detect_fn=det)


def test_trainer_reads_a_prepared_cache_and_torchrun_ranks_share_the_work(tmp_path, monkeypatch):
    _celeba(tmp_path / "celeba")
    det = FakeDetector()
    data = DataConfig(data=str(tmp_path / "celeba"), shard_size=2, min_face_px=40, workers=1)
    cache = tmp_path / "cache"
    files = list_photos(data.data)
    prepare_cache(files, cache, PreprocessSettings(crop_size=32, min_face_px=40, shard_size=2, workers=1),
                  detect_fn=det, rank=1, world=2)  # another rank finished its shard
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    report = prepared_cache(data, 32, cache, det)  # rank 0 of a torchrun launch: its shards only
    assert det.calls == 4 and report["kept"] == 3
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert prepared_cache(DataConfig(workers=1), 32, cache, det)["kept"] == 3 and det.calls == 4  # --cache alone
    with pytest.raises(PrepareError, match="crop_size=32"):
        prepared_cache(DataConfig(), 64, cache, det)
    with pytest.raises(PrepareError, match="holds none"):
        prepared_cache(DataConfig(), 32, tmp_path / "empty", det)


def test_prepare_command_rejects_bad_input_with_exit_2(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    assert main(["--data", str(tmp_path / "nowhere"), "--cache", str(tmp_path / "c")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "photos"), "--cache", str(tmp_path / "c"), "--data.split=train"]) == 2
    assert "no 'train' split" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "photos"), "--cache", str(tmp_path / "c")]) == 2
    assert "no photos found" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "photos"), "--data.layout=imagenet"]) == 2
    assert not (tmp_path / "c").exists()

"""The CPU thread policy: OpenMP threads sleep when idle (set before torch loads, the user's own
value kept), a fixed thread count on request, and results that do not depend on it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.threads import FIT_THREADS, PROCESS_DEFAULTS, fit_threads, threads_from_env, worker_environment

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in PROCESS_DEFAULTS}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=ROOT)


def test_worker_environment_adds_defaults_and_keeps_the_users_value():
    env = worker_environment({"OMP_WAIT_POLICY": "ACTIVE"})
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    assert env["KMP_BLOCKTIME"] == "0"
    assert worker_environment({})["OMP_WAIT_POLICY"] == "PASSIVE"


def test_policy_applies_before_torch_and_is_refused_after():
    before = _python("from backend.threads import apply_process_policy as a; import os;"
                     "print(a(), os.environ['OMP_WAIT_POLICY'])")
    assert before.stdout.split() == ["True", "PASSIVE"], before.stderr
    after = _python("import torch, os; from backend.threads import apply_process_policy as a;"
                    "print(a(), os.environ.get('OMP_WAIT_POLICY'))")
    assert after.stdout.split() == ["False", "None"], after.stderr


@pytest.mark.parametrize("numpy_first", [False, True])
def test_policy_keeps_numpys_arrays_off_huge_pages(numpy_first):
    # _set_madvise_hugepage returns the setting it replaces
    code = ("import numpy as np;" if numpy_first else "") + (
        "from backend.threads import apply_process_policy as a; a(); import numpy as np;"
        "print(np.core.multiarray._set_madvise_hugepage(True))")
    assert _python(code).stdout.split() == ["False"]
    assert _python(code, NUMPY_MADVISE_HUGEPAGE="1").stdout.split() == ["True"]  # the user's value wins


def test_the_command_line_applies_it_before_torch_loads():
    code = ("import sys; from backend import cli; import backend.threads as t;"
            "cli.build_parser = lambda: (_ for _ in ()).throw(SystemExit(__import__('os').environ['OMP_WAIT_POLICY']))\n"
            "cli.main([])")
    assert _python(code).stderr.strip() == "PASSIVE"


@pytest.mark.parametrize("raw, expected", [("", None), ("1", 1), (" 3 ", 3)])
def test_threads_from_env(raw, expected):
    assert threads_from_env({"PHOTOHEAD_THREADS": raw}) == expected


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_threads_from_env_refuses_nonsense_in_one_line(raw):
    with pytest.raises(ValueError, match="PHOTOHEAD_THREADS"):
        threads_from_env({"PHOTOHEAD_THREADS": raw})


def test_a_fit_runs_on_one_thread_unless_the_user_asks_for_more():
    assert FIT_THREADS == 1
    assert fit_threads(None, {}) == 1
    assert fit_threads(None, {"PHOTOHEAD_THREADS": "3"}) == 3
    assert fit_threads(2, {"PHOTOHEAD_THREADS": "3"}) == 2
    with pytest.raises(ValueError, match="PHOTOHEAD_THREADS"):
        fit_threads(None, {"PHOTOHEAD_THREADS": "0"})


def test_reconstruct_refuses_zero_threads_before_any_work(tmp_path):
    out = _python("from backend.cli import main; raise SystemExit(main(['reconstruct', '--sample', "
                  f"'grace_hopper', '-o', {str(tmp_path / 'out')!r}, '--threads', '0']))")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["photohead: error: --threads 0: give a whole number of threads, 1 or more"]
    assert not (tmp_path / "out").exists()


def test_each_in_parallel_gives_the_heads_of_single_runs(tmp_path, grace_hopper):
    """--each on two cores: two worker processes with one thread each; every photo's head is
    bit-identical to a run of that photo alone on one thread."""
    from PIL import Image

    photos = []
    for name, img in (("hopper", grace_hopper), ("flipped", np.ascontiguousarray(grace_hopper[:, ::-1]))):
        Image.fromarray(img).save(tmp_path / f"{name}.png")
        photos.append(str(tmp_path / f"{name}.png"))
    fast = ["--quality", "draft", "--no-detail", "--no-identity", "-q"]
    out = tmp_path / "batch"
    run = _python(f"from backend.cli import main; raise SystemExit(main({['reconstruct', *photos, '-o', str(out), '--each', '--jobs', '2', '--threads', '1', *fast]!r}))")
    assert run.returncode == 0, run.stderr
    batch = json.loads((out / "batch.json").read_text())
    assert (batch["jobs"], batch["threads_per_job"], batch["failed"]) == (2, 1, 0)
    single = tmp_path / "single"
    run = _python(f"from backend.cli import main; raise SystemExit(main({['reconstruct', photos[1], '-o', str(single), '--threads', '1', *fast]!r}))")
    assert run.returncode == 0, run.stderr
    with np.load(out / "flipped" / "head.npz") as a, np.load(single / "head.npz") as b:
        np.testing.assert_array_equal(a["vertices"], b["vertices"])


def test_jobs_needs_each_and_a_positive_count(tmp_path):
    for extra, message in ((["--jobs", "2"], "use it with --each"), (["--each", "--jobs", "0"], "--jobs 0")):
        out = _python(f"from backend.cli import main; raise SystemExit(main({['reconstruct', '--sample', 'grace_hopper', '-o', str(tmp_path / 'o'), *extra]!r}))")
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "o").exists()

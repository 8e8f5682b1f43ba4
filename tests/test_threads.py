"""The CPU thread policy: OpenMP threads sleep when idle (set before torch loads, the user's own
value kept), a fixed thread count on request, and results that do not depend on it."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.threads import PROCESS_DEFAULTS, threads_from_env, worker_environment

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


def test_reconstruct_refuses_zero_threads_before_any_work(tmp_path):
    out = _python("from backend.cli import main; raise SystemExit(main(['reconstruct', '--sample', "
                  f"'grace_hopper', '-o', {str(tmp_path / 'out')!r}, '--threads', '0']))")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["photohead: error: --threads 0: give a whole number of threads, 1 or more"]
    assert not (tmp_path / "out").exists()


def test_coarse_fit_is_the_same_on_one_and_two_threads():
    """So that a thread count chosen for a busy machine changes the time, not the head."""
    from backend.reconstruct import ReconstructConfig, reconstruct
    from backend.samples import sample_photo

    _, img = sample_photo("grace_hopper")
    config = ReconstructConfig(quality="draft", device="cpu", detail=False)
    saved = torch.get_num_threads()
    try:
        heads = []
        for n in (1, 2):
            torch.set_num_threads(n)
            heads.append(reconstruct([img], config))
    finally:
        torch.set_num_threads(saved)
    np.testing.assert_array_equal(heads[0].vertices, heads[1].vertices)

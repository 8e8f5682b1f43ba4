"""deterministic(): on inside the block (CPU strictly, CUDA warn-only), the caller's setting
restored after; reproducible gathers; on a GPU, two fits give the same bits."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend.determinism import deterministic


def test_on_inside_restored_after():
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


def test_no_nan_filling_inside_and_the_setting_restored_after():
    """Deterministic mode NaN-fills new tensors by default (one kernel per allocation on CUDA);
    the block switches that off and puts it back."""
    flag = pytest.importorskip("torch.utils.deterministic")
    assert flag.fill_uninitialized_memory
    with deterministic(torch.device("cpu")):
        assert not flag.fill_uninitialized_memory
    assert flag.fill_uninitialized_memory
    with deterministic(torch.device("cuda")):  # the flags touch no GPU
        assert not flag.fill_uninitialized_memory
    assert flag.fill_uninitialized_memory


def test_cuda_is_warn_only_and_restored():
    """Setting the flags touches no GPU, so this runs anywhere."""
    with deterministic(torch.device("cuda")):
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()


def test_restored_after_an_error_and_left_alone_elsewhere():
    with pytest.raises(RuntimeError):
        with deterministic(torch.device("cpu")):
            raise RuntimeError("fit failed")
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic(torch.device("meta")):
        assert not torch.are_deterministic_algorithms_enabled()


def test_sorted_accumulation_is_repeatable():
    """The kernel this is for: a gather's backward (index_put_ accumulate) over many repeated
    indices on two threads sums in the same order every time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(0)
        index = torch.randint(0, 50, (400_000,), generator=g)
        values = torch.randn(400_000, generator=g)
        with deterministic(torch.device("cpu")):
            sums = {tuple(torch.zeros(50).index_put_((index,), values, accumulate=True).tolist()) for _ in range(10)}
        assert len(sums) == 1
    finally:
        torch.set_num_threads(threads)


def test_a_cuda_deterministic_block_fixes_the_cublas_workspace_unless_the_user_chose_one():
    code = ("import os, torch, backend.reconstruct; from backend.determinism import deterministic; "
            "print(os.environ.get('CUBLAS_WORKSPACE_CONFIG')); "
            "ctx = deterministic(torch.device('cpu')); ctx.__enter__(); ctx.__exit__(None, None, None); "
            "print(os.environ.get('CUBLAS_WORKSPACE_CONFIG')); "
            "ctx = deterministic(torch.device('cuda')); ctx.__enter__(); ctx.__exit__(None, None, None); "
            "print(os.environ.get('CUBLAS_WORKSPACE_CONFIG'))")
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", ":4096:8"]  # importing the backend changes nothing
    out = subprocess.run([sys.executable, "-c", code], env={**env, "CUBLAS_WORKSPACE_CONFIG": ":16:8"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == [":16:8"] * 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_two_fits_on_cuda_give_the_same_bits(face_model):
    """A draft fit with detail of one synthetic face, twice on the GPU: identical vertices and
    displacement (without backend.determinism they differed by 0.2 mm on an H200)."""
    from evaluation.suites import DETAIL_CONDITIONS
    from evaluation.synthetic import SyntheticSettings, make_faces
    from backend.reconstruct import ReconstructConfig, reconstruct

    face = make_faces(face_model, 1, seed=5, settings=SyntheticSettings(**DETAIL_CONDITIONS))[0]
    config = ReconstructConfig(quality="draft", device="cuda")
    heads = [reconstruct([face.image], config, landmarks=[face.contour68]) for _ in range(2)]
    assert np.array_equal(heads[0].vertices, heads[1].vertices)
    assert np.array_equal(heads[0].displacement, heads[1].displacement)
    assert np.abs(heads[0].displacement).max() > 0.05  # a real detail fit, not an empty one

"""deterministic_on_cpu: on for the CPU inside the block, the caller's setting restored after."""
import pytest
import torch

from backend.determinism import deterministic_on_cpu


def test_on_inside_restored_after():
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_on_cpu(torch.device("cpu")):
        assert torch.are_deterministic_algorithms_enabled()
    assert not torch.are_deterministic_algorithms_enabled()


def test_restored_after_an_error_and_left_alone_off_cpu():
    with pytest.raises(RuntimeError):
        with deterministic_on_cpu(torch.device("cpu")):
            raise RuntimeError("fit failed")
    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_on_cpu(torch.device("meta")):
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
        with deterministic_on_cpu(torch.device("cpu")):
            sums = {tuple(torch.zeros(50).index_put_((index,), values, accumulate=True).tolist()) for _ in range(10)}
        assert len(sums) == 1
    finally:
        torch.set_num_threads(threads)

"""Optimisation steps replayed as CUDA graphs: on a GPU a fit is launch-bound (docs/gpu.md: a
draft fit's GPU is busy 1.1 s of 3.6 s over 120k kernel launches), so a fixed-shape step is
captured once and replayed as one launch.

A *capturable* step reads its inputs from tensors that stay the same objects for the whole
stage (the parameters, static buffers it copies new values into), has fixed shapes, makes no
host synchronisation (no ``.item()``, ``float(tensor)``, Python branch on a tensor, data-
dependent shape) and does its forward, backward, optimiser step and projections itself,
returning the loss terms as tensors (read after the stage, not every step). The renderer's
visibility pass has data-dependent shapes, so a rendering step takes it precomputed
(:func:`backend.render.rasterize.visibility` before each step, outside the graph).

:class:`StepRunner` runs such a step eagerly (the CPU, or graphs off) or, on CUDA, warms it up
on a side stream, captures it and replays it (``torch.cuda.CUDAGraph``). The optimiser must
then be built with :func:`adam` (``capturable=True`` on CUDA).
"""
from __future__ import annotations

import warnings
from typing import Callable

import torch

from .adam import PlainAdam

__all__ = ["StepRunner", "adam", "use_graphs"]

Step = Callable[[], dict[str, torch.Tensor]]


def use_graphs(option: bool | None, device: torch.device) -> tuple[bool, bool]:
    """(run the capturable step, capture it in a CUDA graph) for a fit's ``step_graphs`` option:
    None (default) → both on CUDA, neither elsewhere; True → the capturable step everywhere,
    captured on CUDA (the CPU runs it eagerly: tests compare it with the plain step); False → neither."""
    capturable = device.type == "cuda" if option is None else option
    return capturable, capturable and device.type == "cuda"


def adam(groups: list[dict], graph: bool) -> torch.optim.Adam | PlainAdam:
    """Adam over parameter groups; ``capturable`` (step counts on the device) when its step is
    captured in a CUDA graph. The update is the same either way. Eager steps get
    :class:`~backend.fit.adam.PlainAdam` (the same update without ``torch.optim``'s 1.2 s import
    of ``torch._dynamo`` per process)."""
    return torch.optim.Adam(groups, capturable=True) if graph else PlainAdam(groups)


class StepRunner:
    """Calls a capturable ``step`` once per optimisation step: eagerly, or (``graph``) the first
    ``warmup`` times eagerly on a side stream, then captured into a CUDA graph that every later
    call replays. Every call is one real step (the capture's own step is its first replay).
    Returns the step's loss terms (in graph mode the same tensors every call, refreshed by each
    replay). A step that cannot be captured (a host synchronisation inside) warns once and runs
    eagerly from then on."""

    def __init__(self, step: Step, graph: bool, warmup: int = 3):
        self.step = step
        self.graph = graph
        self.warmup = warmup
        self.calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._out: dict[str, torch.Tensor] = {}

    def __call__(self) -> dict[str, torch.Tensor]:
        self.calls += 1
        if not self.graph:
            return self.step()
        if self.calls <= self.warmup:  # eager, on a side stream (as torch.cuda.graphs asks)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step()
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self._graph is None:
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self._out = self.step()
            except RuntimeError as exc:  # recorded, not run: the parameters are untouched
                warnings.warn(f"CUDA graph capture failed, the fit runs eagerly: {exc}", stacklevel=2)
                self.graph = False
                return self.step()
            self._graph = graph
        self._graph.replay()
        return self._out

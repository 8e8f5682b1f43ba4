"""A solved landmark warm-up handed from one coarse fit to another that would solve the same problem.

The lens estimate (:mod:`backend.focal_search`) solves the warm-up through each candidate lens;
the real fit then solves the winner's warm-up again, on the same inputs. :func:`warmup_key`
digests everything the Levenberg–Marquardt warm-up reads (the model, its settings, the landmarks
and their weights, the trust, the dense points, the lens and the closed-form start), so a fit
given a :class:`WarmupSolution` with its own key copies the solution instead of solving, and its
result is bit-identical; with another key it solves as before.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..camera import Camera

__all__ = ["WarmupSolution", "warmup_key"]

# CoarseFitConfig fields the landmark warm-up reads (the photometric stages' are left out, so the
# lens estimate's config without them gives the same key)
WARMUP_FIELDS = ("landmark_solver", "landmark_iterations", "weights", "prior_scale", "id_ball", "sliding_contour",
                 "shared_expression", "dense_weight", "jaw_weight", "jaw_weight_with_dense", "landmark_noise",
                 "view_weights")


def warmup_key(model: torch.nn.Module, config, tensors: dict[str, torch.Tensor | None], cam: Camera) -> str:
    """A digest of one warm-up problem: ``model`` (by identity and size), ``config``'s
    :data:`WARMUP_FIELDS`, each named tensor's dtype, shape and bytes (None allowed) and the
    lens (``cam``'s size, focal (V,) and principal (V,2))."""
    h = hashlib.sha256(repr((id(model), getattr(model, "n_verts", None),
                             [(f, getattr(config, f)) for f in WARMUP_FIELDS], cam.width, cam.height)).encode())
    for name, t in {**tensors, "focal": cam.focal, "principal": cam.principal}.items():
        h.update(name.encode())
        if t is not None:
            t = t.detach().contiguous().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class WarmupSolution:
    """The warm-up's solution: the free parameters it wrote, rot (V,3) rad, log_f (V,1), trans
    (V,2) crop px, id (G,K_id), exp (E,K_exp), its loss terms, and the problem's ``key``."""

    key: str
    rot: torch.Tensor
    log_f: torch.Tensor
    trans: torch.Tensor
    id: torch.Tensor
    exp: torch.Tensor
    terms: dict[str, torch.Tensor]

    @classmethod
    def capture(cls, params: torch.nn.Module, terms: dict[str, torch.Tensor], key: str) -> WarmupSolution:
        """The solution now in ``params`` (the coarse fit's free parameters, copied)."""
        return cls(key, *(getattr(params, n).detach().clone() for n in ("rot", "log_f", "trans", "id", "exp")),
                   {k: v.detach().clone() for k, v in terms.items()})

    def apply(self, params: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Write the solution into ``params`` (as solving would have); returns its loss terms."""
        with torch.no_grad():
            for n in ("rot", "log_f", "trans", "id", "exp"):
                getattr(params, n).copy_(getattr(self, n))
        return dict(self.terms)

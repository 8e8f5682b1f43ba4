"""Frozen face-recognition feature extractor for the identity loss L_id (paper Eq. 5).

Default network: dlib's face-recognition ResNet (``face-recognition-models``), read from dlib's
own file format (:mod:`.dlib_format`) into a PyTorch module (:mod:`.network`, which documents the
layer mapping), plus dlib-compatible differentiable face framing (:mod:`.chips`)::

    net = load_identity_net()                       # frozen, eval, CPU float32
    feats = identity_features(images, landmarks68, net)   # (B,3,H,W) in [0,1], (B,68,2) px → (B,128)
    loss_net = FaceIdentity(net)                     # the same as a module: loss_net(images, landmarks68)

Same person ⇔ descriptor distance < ``SAME_PERSON_THRESHOLD`` (0.6, dlib's convention).
"""
from .chips import MEAN_FACE_TEMPLATE, FaceIdentity, extract_chips, face_chip_transform, identity_features
from .network import (
    CHIP_SIZE,
    FEATURE_DIM,
    SAME_PERSON_THRESHOLD,
    IdentityNet,
    convert_dlib_weights,
    dlib_weights_path,
    load_identity_net,
    weights_cache_path,
)

__all__ = [
    "CHIP_SIZE",
    "FaceIdentity",
    "FEATURE_DIM",
    "SAME_PERSON_THRESHOLD",
    "IdentityNet",
    "MEAN_FACE_TEMPLATE",
    "convert_dlib_weights",
    "dlib_weights_path",
    "extract_chips",
    "face_chip_transform",
    "identity_features",
    "load_identity_net",
    "weights_cache_path",
]

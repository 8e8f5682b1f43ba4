"""Headless trainers for stage 1 (coarse encoder) and stage 2 (detail U-Net). Composes ``backend``.

Entry points: ``python -m training.coarse`` and ``python -m training.detail`` (see their docstrings
for single-process and ``torchrun`` commands).
"""

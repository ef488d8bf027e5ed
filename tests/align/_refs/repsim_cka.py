# Vendored TEST REFERENCE, not part of brainalign.
#
# Source: https://github.com/wrongu/repsim/tree/ecd0a545fbb409e971c63f52d27a4899c0070f6e
# (commit ecd0a545fbb409e971c63f52d27a4899c0070f6e): src/repsim/kernels/kernel_methods.py
# (center), src/repsim/util.py (pdist2), src/repsim/kernels/linear.py and radial.py (the
# Linear and SquaredExponential kernels with a float length scale),
# src/repsim/metrics/angular_cka.py (AngularCKA.neural_data_to_point, _matrix_unit_norm,
# _length_impl) and src/repsim/__init__.py (compare, method="angular_cka"). Copyright (c)
# 2022 Richard D. Lange. License: MIT:
#
# Permission is hereby granted, free of charge, to any person obtaining a copy of this
# software and associated documentation files (the "Software"), to deal in the Software
# without restriction, including without limitation the rights to use, copy, modify, merge,
# publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
# to whom the Software is furnished to do so, subject to the following conditions: The above
# copyright notice and this permission notice shall be included in all copies or substantial
# portions of the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
#
# Changes: the class hierarchy is flattened into functions (the kernel objects become a
# `kernel` string and `length_scale` float); the manifold `contains`/`project` checks that
# compare() runs before _length_impl are dropped (they only project points that are not
# already unit-norm centred Gram matrices, which neural_data_to_point's are).
import torch


def center(k):
    n = k.size()[0]
    if k.size() != (n, n):
        raise ValueError(f"Expected k to be nxn square matrix, but it has size {k.size()}")
    H = (
        torch.eye(n, device=k.device, dtype=k.dtype)
        - torch.ones((n, n), device=k.device, dtype=k.dtype) / n
    )
    return H @ k @ H


def pdist2(x, y):
    xx = torch.einsum("i...,i...->i", x, x)
    yy = torch.einsum("j...,j...->j", y, y)
    xy = torch.einsum("i...,j...->ij", x, y)
    return torch.clip(xx[:, None] + yy[None, :] - 2 * xy, 0.0, None)


def inner_product(x, kernel="linear", length_scale=1.0):
    if kernel == "linear":
        return torch.einsum("n...,m...->nm", x, x)
    # SquaredExponential(length_scale): exp(-pdist2(x / l, x / l))
    x = x / length_scale
    return torch.exp(-pdist2(x, x))


def _matrix_unit_norm(A):
    return A / torch.linalg.norm(A, ord="fro")


def neural_data_to_point(x, kernel="linear", length_scale=1.0, use_unbiased_hsic=True):
    centered_gram_matrix = center(inner_product(x, kernel, length_scale))
    if use_unbiased_hsic:
        m = x.shape[0]
        mask = torch.ones_like(centered_gram_matrix) - torch.eye(m, dtype=x.dtype, device=x.device)
        return _matrix_unit_norm(centered_gram_matrix * mask)
    else:
        return _matrix_unit_norm(centered_gram_matrix)


def _length_impl(pt_a, pt_b):
    cka = torch.sum(pt_a * pt_b)
    return torch.arccos(torch.clip(cka, -1.0, 1.0))


def angular_cka(x, y, kernel="linear", length_scale=1.0, use_unbiased_hsic=True):
    """repsim.compare(x, y, method="angular_cka", kernel=..., use_unbiased_hsic=...)."""
    return _length_impl(
        neural_data_to_point(x, kernel, length_scale, use_unbiased_hsic),
        neural_data_to_point(y, kernel, length_scale, use_unbiased_hsic),
    )

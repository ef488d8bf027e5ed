# Vendored TEST REFERENCE, not part of brainalign.
#
# Source: https://github.com/minyoungg/platonic-rep/blob/dcd76ba3c950c1b197a2ae8b1c6713535c94ecf9/metrics.py
# (commit dcd76ba3c950c1b197a2ae8b1c6713535c94ecf9). Copyright (c) Minyoung Huh et al.
# License: MIT (declared in the repository's setup.py: "License :: OSI Approved :: MIT
# License"). Permission is hereby granted, free of charge, to any person obtaining a copy of
# this software and associated documentation files, to deal in the Software without
# restriction, subject to the condition that the above copyright notice and this permission
# notice shall be included in all copies or substantial portions of the Software. THE SOFTWARE
# IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
#
# Only the k-NN metrics are kept (AlignmentMetrics.mutual_knn, cycle_knn, lcs_knn and their
# helpers), their logic unchanged. Changes: module-level functions instead of staticmethods;
# the optional pymp parallel branch of compute_distance and the torchaudio import (used only
# by edit_distance_knn) are dropped; an unused unpacked variable renamed (N -> _N); code
# reformatted by ruff.
import numpy as np
import torch


def cycle_knn(feats_A, feats_B, topk):
    """
    LLM nearest neighbors -> Query Language Pair -> LVM nearest neighbors
    Args:
        feats_A: A torch tensor of shape N x feat_dim
        feats_B: A torch tensor of shape N x feat_dim

    Returns:
        acc: a float representing the accuracy
    """
    knn_A = compute_nearest_neighbors(feats_A, topk)
    knn_B = compute_nearest_neighbors(feats_B, topk)
    return compute_knn_accuracy(knn_A[knn_B]).item()


def mutual_knn(feats_A, feats_B, topk):
    """
    Computes the mutual KNN accuracy.

    Args:
        feats_A: A torch tensor of shape N x feat_dim
        feats_B: A torch tensor of shape N x feat_dim

    Returns:
        A float representing the mutual KNN accuracy
    """
    knn_A = compute_nearest_neighbors(feats_A, topk)
    knn_B = compute_nearest_neighbors(feats_B, topk)

    n = knn_A.shape[0]
    topk = knn_A.shape[1]

    # Create a range tensor for indexing
    range_tensor = torch.arange(n, device=knn_A.device).unsqueeze(1)

    # Create binary masks for knn_A and knn_B
    lvm_mask = torch.zeros(n, n, device=knn_A.device)
    llm_mask = torch.zeros(n, n, device=knn_A.device)

    lvm_mask[range_tensor, knn_A] = 1.0
    llm_mask[range_tensor, knn_B] = 1.0

    acc = (lvm_mask * llm_mask).sum(dim=1) / topk

    return acc.mean().item()


def lcs_knn(feats_A, feats_B, topk):
    knn_A = compute_nearest_neighbors(feats_A, topk)
    knn_B = compute_nearest_neighbors(feats_B, topk)
    score = longest_ordinal_sequence(knn_A, knn_B).float().mean()
    return score


def compute_knn_accuracy(knn):
    """
    Compute the accuracy of the nearest neighbors. Assumes index is the gt label.
    Args:
        knn: a torch tensor of shape N x topk
    Returns:
        acc: a float representing the accuracy
    """
    n = knn.shape[0]
    acc = knn == torch.arange(n, device=knn.device).view(-1, 1, 1)
    acc = acc.float().view(n, -1).max(dim=1).values.mean()
    return acc


def compute_nearest_neighbors(feats, topk=1):
    """
    Compute the nearest neighbors of feats
    Args:
        feats: a torch tensor of shape N x D
        topk: the number of nearest neighbors to return
    Returns:
        knn: a torch tensor of shape N x topk
    """
    assert feats.ndim == 2, f"Expected feats to be 2D, got {feats.ndim}"
    knn = (feats @ feats.T).fill_diagonal_(-1e8).argsort(dim=1, descending=True)[:, :topk]
    return knn


def longest_ordinal_sequence(X, Y):
    """For each pair in X and Y, compute the length of the longest sub-sequence (LCS)"""

    def lcs_length(x, y):
        """
        Compute the length of the longest common subsequence between two sequences.
        This is a classic dynamic programming implementation.
        """
        m, n = len(x), len(y)
        dp = [[0] * (n + 1) for _ in range(m + 1)]

        for i in range(1, m + 1):
            for j in range(1, n + 1):
                if x[i - 1] == y[j - 1]:
                    dp[i][j] = dp[i - 1][j - 1] + 1
                else:
                    dp[i][j] = max(dp[i - 1][j], dp[i][j - 1])
        return dp[m][n]

    lcs = compute_distance(X, Y, lcs_length)
    return lcs


def compute_distance(X, Y, dist_fn):
    """compute distance in parallel"""
    B, _N = X.shape
    distances = np.zeros(B)
    X, Y = X.cpu().numpy(), Y.cpu().numpy()

    for i in range(B):
        distances[i] = dist_fn(X[i], Y[i])
    return torch.tensor(distances)

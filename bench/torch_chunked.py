"""The chunked form of causal polynomial attention written in PyTorch the way an informed user
writes it: a Python loop over chunks carrying the state (S = sum phi(k) v^T, z = sum phi(k)).
Two variants, the baselines of bench_models.py:

  * chunked_features: the intra-chunk part through the features too, phi(Q_c) phi(K_c)^T;
  * chunked_direct:   the intra-chunk part as the kernel of the scores, kappa(c Q_c K_c^T).

Inputs (heads, n, d) / (heads, n, dv) tensors; kernel "taylor" (1 + x + x^2/2, Based) or "power"
(x^2); features are the full outer product (1, sqrt(c) x, c x (x) x / sqrt(2)) as in
flash-linear-attention's Based feature map (d^2 second-order terms, not the symmetric ones).
"""

from __future__ import annotations

import math

import torch


def features(x: torch.Tensor, scale: float, kernel: str) -> torch.Tensor:
    """phi(x) with phi(q).phi(k) = 1 + c q.k + (c q.k)^2 / 2 (taylor) or (c q.k)^2 (power)."""
    x2 = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2) * scale
    if kernel == "power":
        return x2
    ones = torch.ones(*x.shape[:-1], 1, dtype=x.dtype, device=x.device)
    return torch.cat([ones, x * math.sqrt(scale), x2 / math.sqrt(2.0)], dim=-1)


def score_kernel(s: torch.Tensor, kernel: str) -> torch.Tensor:
    return s * s if kernel == "power" else 1 + s + 0.5 * s * s


def chunked_features(q, k, v, scale: float, kernel: str = "taylor", chunk: int = 256, eps: float = 1e-6):
    H, n, _ = q.shape
    t = features(q[:, :1], scale, kernel).shape[-1]
    S = q.new_zeros(H, t, v.shape[-1])
    z = q.new_zeros(H, t, 1)
    mask = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool))
    out = torch.empty(H, n, v.shape[-1], dtype=q.dtype)
    for a in range(0, n, chunk):
        qc, kc, vc = q[:, a : a + chunk], k[:, a : a + chunk], v[:, a : a + chunk]
        r = qc.shape[1]
        fq, fk = features(qc, scale, kernel), features(kc, scale, kernel)
        A = (fq @ fk.transpose(1, 2)).masked_fill(~mask[:r, :r], 0.0)
        num = fq @ S + A @ vc
        den = fq @ z + A.sum(-1, keepdim=True)
        out[:, a : a + r] = num / (den + eps)
        S += fk.transpose(1, 2) @ vc
        z += fk.sum(1).unsqueeze(-1)
    return out


def chunked_direct(q, k, v, scale: float, kernel: str = "taylor", chunk: int = 256, eps: float = 1e-6):
    H, n, _ = q.shape
    t = features(q[:, :1], scale, kernel).shape[-1]
    S = q.new_zeros(H, t, v.shape[-1])
    z = q.new_zeros(H, t, 1)
    mask = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool))
    out = torch.empty(H, n, v.shape[-1], dtype=q.dtype)
    for a in range(0, n, chunk):
        qc, kc, vc = q[:, a : a + chunk], k[:, a : a + chunk], v[:, a : a + chunk]
        r = qc.shape[1]
        A = score_kernel(scale * qc @ kc.transpose(1, 2), kernel).masked_fill(~mask[:r, :r], 0.0)
        fq, fk = features(qc, scale, kernel), features(kc, scale, kernel)
        num = fq @ S + A @ vc
        den = fq @ z + A.sum(-1, keepdim=True)
        out[:, a : a + r] = num / (den + eps)
        S += fk.transpose(1, 2) @ vc
        z += fk.sum(1).unsqueeze(-1)
    return out

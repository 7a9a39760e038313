"""Self-attention that stays fast under autocast.

open_clip's standard blocks use ``torch.nn.MultiheadAttention`` with ``batch_first=True``. In eval mode
torch runs it on a fused fast path, but autocast disqualifies that path; the fallback transposes the
input to (L, N, E) and its non-contiguous input projection becomes a batched matmul that copies the
weight once per token position, which makes bf16 autocast *slower* than fp32 on a CPU. The same
attention - one packed input projection on the contiguous (N, L, E) input, then
``scaled_dot_product_attention``, then the output projection - avoids the copies. It is applied only
when the device manager computes in bf16/fp16; fp32 keeps open_clip's module untouched (exact parity).
"""
from __future__ import annotations

import types


def patch_attention(model) -> int:
    """Give every eligible MultiheadAttention in ``model`` the autocast-friendly forward; returns how many."""
    import torch

    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.MultiheadAttention) and _eligible(module):
            module.forward = types.MethodType(_make_forward(type(module).forward), module)
            count += 1
    return count


def _eligible(mha) -> bool:
    return (mha.batch_first and mha._qkv_same_embed_dim and mha.in_proj_weight is not None
            and mha.bias_k is None and mha.bias_v is None and not mha.add_zero_attn)


def _make_forward(original):
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        usable = (query is key and key is value and query.dim() == 3 and key_padding_mask is None
                  and not need_weights and not self.training and not is_causal
                  and (attn_mask is None or (attn_mask.dim() == 2 and attn_mask.is_floating_point())))
        if not usable:
            return original(self, query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                            attn_mask=attn_mask, average_attn_weights=average_attn_weights, is_causal=is_causal)
        return self_attention(self, query, attn_mask), None

    return forward


def self_attention(mha, x, attn_mask=None):
    """MultiheadAttention(x, x, x) for batch-first ``x`` (N, L, E) with an optional additive (L, L) mask."""
    import torch.nn.functional as F

    n, length, width = x.shape
    heads = mha.num_heads
    qkv = F.linear(x, mha.in_proj_weight, mha.in_proj_bias)
    q, k, v = qkv.view(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4).unbind(0)
    mask = attn_mask.to(q.dtype) if attn_mask is not None else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return mha.out_proj(out.transpose(1, 2).reshape(n, length, width))


def precast_weights(model, dtype) -> int:
    """Store the weights autocast would cast anyway (linear, conv, attention in-projection) in ``dtype``.

    Autocast rounds these fp32 weights to bf16/fp16 on every forward; under ``inference_mode`` its cast
    cache is off, so a ViT-B-32 re-casts ~88M weights per batch. Rounding them once gives bit-identical
    results (the same round-to-nearest cast) without the per-batch copies. Norms, embeddings and the
    logit scale stay fp32, as autocast keeps them. Only valid when the model runs under autocast.
    """
    import torch

    _pin_cast_dtypes(model)
    count = 0
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            names = ("weight", "bias")
        elif isinstance(module, torch.nn.MultiheadAttention):
            names = ("in_proj_weight", "in_proj_bias")
        else:
            continue
        for name in names:
            param = getattr(module, name, None)
            if param is not None and param.dtype == torch.float32:
                param.data = param.data.to(dtype)
                count += 1
    return count


def _pin_cast_dtypes(model) -> None:
    """open_clip's text tower picks its residual dtype from a weight's dtype; keep the answer it gave."""
    for module in model.modules():
        if callable(getattr(module, "get_cast_dtype", None)):
            module.get_cast_dtype = (lambda dtype: lambda: dtype)(module.get_cast_dtype())

"""The fused attention + KG-positive op equals its plain-autograd twin, in value and gradient."""

import pytest
import torch

from jnskr.models.fused import attention_and_kg_positive, attention_and_kg_positive_reference


def _problem(seed: int, counts: list[int], d: int = 5, a: int = 3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    n, B = sum(counts), len(counts)
    seg = torch.repeat_interleave(torch.arange(B), torch.tensor(counts))

    def r(*shape, scale=1.0):
        return (scale * torch.randn(*shape, dtype=dtype, generator=g)).requires_grad_()

    x, z, e = r(n, d), r(n, d), r(B, d)
    W, b, w = r(d, a), r(a, scale=0.5), r(a)
    w_neg_f = torch.rand(B, dtype=dtype, generator=g)[seg] * 3.0  # w⁻ > w⁺ occurs too
    return (x, z, e, W, b, w), seg, B, w_neg_f


@pytest.mark.parametrize("seed,counts", [(0, [3, 1, 4]), (1, [0, 2, 0, 5, 1]), (2, [1]), (3, [0, 0]), (4, [7, 0, 9])])
@pytest.mark.parametrize("w_pos", [1.0, 0.7])
def test_fused_equals_reference(seed, counts, w_pos):
    params, seg, B, w_neg_f = _problem(seed, counts)
    fused = attention_and_kg_positive(*params, seg, B, w_pos, w_neg_f)
    ref = attention_and_kg_positive_reference(*params, seg, B, w_pos, w_neg_f)
    assert torch.allclose(fused[0], ref[0], rtol=1e-12, atol=1e-12)
    assert torch.allclose(fused[1], ref[1], rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(99)
    d_msg = torch.randn(B, params[0].shape[1], dtype=torch.float64, generator=g)
    grads_f = torch.autograd.grad((fused[0] * d_msg).sum() + 0.3 * fused[1], params)
    grads_r = torch.autograd.grad((ref[0] * d_msg).sum() + 0.3 * ref[1], params)
    for gf, gr in zip(grads_f, grads_r):
        assert torch.allclose(gf, gr, rtol=1e-10, atol=1e-12)


def test_fused_passes_gradcheck():
    params, seg, B, w_neg_f = _problem(7, [2, 3, 0, 1])
    assert torch.autograd.gradcheck(lambda *p: attention_and_kg_positive(*p, seg, B, 1.0, w_neg_f), params)

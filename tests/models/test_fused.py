"""The fused kernels equal their plain-autograd twins, in value and gradient, on every device
(the `device` fixture: cpu, and cuda under the `gpu` marker)."""

import pytest
import torch

from jnskr.losses.fused import cf_positive, cf_positive_reference
from jnskr.models.jnskr.fused import attention_and_kg_positive, attention_and_kg_positive_reference
from jnskr.ops import segment_sum


def _problem(seed: int, counts: list[int], d: int = 5, a: int = 3, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    n, B = sum(counts), len(counts)
    seg = torch.repeat_interleave(torch.arange(B), torch.tensor(counts))

    def r(*shape, scale=1.0):
        return (scale * torch.randn(*shape, dtype=dtype, generator=g)).to(device).requires_grad_()

    x, z, e = r(n, d), r(n, d), r(B, d)
    W, b, w = r(d, a), r(a, scale=0.5), r(a)
    w_neg_f = (torch.rand(B, dtype=dtype, generator=g)[seg] * 3.0).to(device)  # w⁻ > w⁺ occurs too
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.tensor(counts).cumsum(0)])
    return (x, z, e, W, b, w), seg.to(device), ptr.to(device), B, w_neg_f


@pytest.mark.parametrize("seed,counts", [(0, [3, 1, 4]), (1, [0, 2, 0, 5, 1]), (2, [1]), (3, [0, 0]), (4, [7, 0, 9])])
@pytest.mark.parametrize("w_pos", [1.0, 0.7])
def test_fused_equals_reference(seed, counts, w_pos, device):
    params, seg, ptr, B, w_neg_f = _problem(seed, counts, device=device)
    fused = attention_and_kg_positive(*params, seg, ptr, B, w_pos, w_neg_f)
    ref = attention_and_kg_positive_reference(*params, seg, ptr, B, w_pos, w_neg_f)
    assert torch.allclose(fused[0], ref[0], rtol=1e-12, atol=1e-12)
    assert torch.allclose(fused[1], ref[1], rtol=1e-12, atol=1e-12)
    g = torch.Generator().manual_seed(99)
    d_msg = torch.randn(B, params[0].shape[1], dtype=torch.float64, generator=g).to(device)
    grads_f = torch.autograd.grad((fused[0] * d_msg).sum() + 0.3 * fused[1], params)
    grads_r = torch.autograd.grad((ref[0] * d_msg).sum() + 0.3 * ref[1], params)
    for gf, gr in zip(grads_f, grads_r):
        assert torch.allclose(gf, gr, rtol=1e-10, atol=1e-12)


def test_fused_passes_gradcheck(device):
    params, seg, ptr, B, w_neg_f = _problem(7, [2, 3, 0, 1], device=device)
    assert torch.autograd.gradcheck(lambda *p: attention_and_kg_positive(*p, seg, ptr, B, 1.0, w_neg_f), params)


@pytest.mark.parametrize("seed,counts", [(0, [3, 1, 4]), (1, [0, 2, 0, 5, 1]), (3, [0, 0])])
@pytest.mark.parametrize("c_pos", [1.0, 0.6])
def test_cf_positive_equals_reference(seed, counts, c_pos, device):
    (pu, _, q, _, _, _), seg, ptr, B, c_neg_f = _problem(seed, counts, device=device)
    h = torch.randn(pu.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).to(device)
    h.requires_grad_()
    fused = cf_positive(pu, q, h, seg, ptr, c_pos, c_neg_f)
    ref = cf_positive_reference(pu, q, h, seg, ptr, c_pos, c_neg_f)
    assert torch.allclose(fused, ref, rtol=1e-12, atol=1e-12)
    for gf, gr in zip(torch.autograd.grad(fused, (pu, q, h)), torch.autograd.grad(ref, (pu, q, h))):
        assert torch.allclose(gf, gr, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b, c: cf_positive(a, b, c, seg, ptr, c_pos, c_neg_f), (pu, q, h))


@pytest.mark.parametrize("seed,counts", [(0, [3, 1, 4]), (1, [0, 2, 0, 5, 1]), (4, [7, 0, 9])])
def test_cf_positive_with_per_pair_weights_equals_reference(seed, counts, device):
    """c⁺_uv per pair (data.weight: confidence), some below c⁻_v, one zero."""
    (pu, _, q, _, _, _), seg, ptr, B, c_neg_f = _problem(seed, counts, device=device)
    g = torch.Generator().manual_seed(50 + seed)
    h = torch.randn(pu.shape[1], dtype=torch.float64, generator=g).to(device).requires_grad_()
    c_pos = (4.0 * torch.rand(len(seg), dtype=torch.float64, generator=g)).to(device)
    c_pos[0] = 0.0
    fused = cf_positive(pu, q, h, seg, ptr, c_pos, c_neg_f)
    ref = cf_positive_reference(pu, q, h, seg, ptr, c_pos, c_neg_f)
    assert torch.allclose(fused, ref, rtol=1e-12, atol=1e-12)
    for gf, gr in zip(torch.autograd.grad(fused, (pu, q, h)), torch.autograd.grad(ref, (pu, q, h))):
        assert torch.allclose(gf, gr, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda a, b, c: cf_positive(a, b, c, seg, ptr, c_pos, c_neg_f), (pu, q, h))


def test_segment_sum_matches_index_add_and_handles_empty_segments(device):
    _, seg, ptr, B, w = _problem(2, [0, 3, 0, 2], device=device)
    x = torch.randn(len(seg), 4, dtype=torch.float64).to(device)
    want = torch.zeros(B, 4, dtype=torch.float64, device=device).index_add_(0, seg, w.unsqueeze(1) * x)
    assert torch.allclose(segment_sum(ptr, w, x), want, rtol=1e-12, atol=1e-15)
    z = torch.zeros(0, device=device)
    empty = segment_sum(torch.zeros(3, dtype=torch.long, device=device), z, torch.zeros(0, 4, device=device))
    assert empty.shape == (2, 4) and not empty.any()

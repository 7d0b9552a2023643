"""Tests of `lsnb.kernel_vchunk` (the class-blocked path, issue 20) through Triton's CPU interpreter at tiny sizes, against
float64 references on fresh random inputs; its block plan against the memory budget it is given."""
import os
os.environ.setdefault('TRITON_INTERPRET', '1')   # the Triton kernels on the CPU, before lsnb.kernel is imported
import math
import pytest, torch
from lsnb.kernel import reference_loss, linear_cross_entropy, INTERPRETED
from lsnb.kernel_vchunk import vchunk_linear_cross_entropy as vchunk, _plan

DEV = 'cuda' if torch.cuda.is_available() else 'cpu'
needs_kernel = pytest.mark.skipif(DEV == 'cpu' and not INTERPRETED, reason='no CUDA and TRITON_INTERPRET was not set before lsnb.kernel was imported')


def _rel(a, b): return float((a.double() - b.double()).norm() / b.double().norm())


def _errors(dtype, N, d, V, red, alpha, bias=False, **kw):
    x = torch.randn(N, d, dtype=torch.float64, device=DEV); w = torch.randn(V, d, dtype=torch.float64, device=DEV) * 2 / d**0.5
    t = torch.randint(0, V, (N,), device=DEV); t[torch.rand(N, device=DEV) < 0.2] = -100
    b = None
    if bias:
        b = torch.randn(V, dtype=torch.float64, device=DEV); b[torch.randperm(V, device=DEV)[:V // 8]] = -math.inf
        t[(t >= 0) & (b[t.clamp(min=0)] == -math.inf)] = -100
    xl, wl = x.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
    xr, wr = xl.detach().double().requires_grad_(), wl.detach().double().requires_grad_()
    bl = None if b is None else b.to(dtype).requires_grad_()
    br = None if b is None else bl.detach().double().requires_grad_()
    out = vchunk(xl, wl, t, bias=bl, label_smoothing=alpha, reduction=red, **kw)
    ref = reference_loss(xr, wr, t, bias=br, label_smoothing=alpha, reduction=red, **{k: v for k, v in kw.items() if k in ('softcap', 'z_loss', 'temperature')})
    up = torch.randn(N, dtype=torch.float64, device=DEV) if red == 'none' else torch.tensor(0.7, dtype=torch.float64, device=DEV)
    (out.double() * up).sum().backward(); (ref * up).sum().backward()
    e = [_rel(out.detach(), ref.detach()), _rel(xl.grad, xr.grad), _rel(wl.grad, wr.grad)]
    if bias: e.append(_rel(bl.grad, br.grad))
    return e


@needs_kernel
@pytest.mark.parametrize('red,alpha,rb', [('mean', 0.1, None), ('sum', 0.0, 2), ('none', 0.1, 3)])
def test_fp32_against_float64(red, alpha, rb):
    assert max(_errors(torch.float32, 23, 16, 300, red, alpha, chunk_size=64, row_blocks=rb)) < 2e-5


@needs_kernel
def test_options_and_bias_against_float64():
    assert max(_errors(torch.float32, 19, 16, 200, 'mean', 0.1, bias=True, softcap=4.0, z_loss=1e-3, temperature=0.8,
                       chunk_size=48, row_blocks=2)) < 2e-5


@needs_kernel
@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_half_against_float64(dtype):
    assert max(_errors(dtype, 21, 16, 160, 'mean', 0.1, chunk_size=32, row_blocks=2)) < (3e-2 if dtype == torch.bfloat16 else 5e-3)


@needs_kernel
def test_same_as_token_blocked_path():
    x = torch.randn(2, 11, 16, device=DEV); w = torch.randn(90, 16, device=DEV) / 4
    t = torch.randint(0, 90, (2, 11), device=DEV); t[1, :3] = -100
    a = linear_cross_entropy(x, w, t, label_smoothing=0.1, reduction='none', impl='vchunk', chunk_size=32)
    b = linear_cross_entropy(x, w, t, label_smoothing=0.1, reduction='none', impl='torch')
    assert a.shape == t.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()
    assert float(a[1, :3].abs().max()) == 0.0


@pytest.mark.parametrize('N,d,V,elsize', [(8192, 640, 262144, 2), (8192, 4096, 128256, 2), (16384, 3584, 152064, 2),
                                          (4096, 2048, 32000, 4), (300, 32, 700, 2), (1, 8, 5, 2)])
def test_plan_within_budget(N, d, V, elsize):
    "The backward's logits block plus its fp32 dX accumulator fit in the budget; blocks cover every row and class."
    for budget in (None, 2 ** 24, 2 ** 28):
        p = _plan(N, d, V, elsize, budget)
        acc = 0 if elsize == 4 else 4 * d
        assert p['R'] * p['Nb'] >= N and (p['R'] - 1) * p['Nb'] < N, p
        assert 1 <= p['C_bwd'] <= V and 1 <= p['C_fwd'] <= V, p
        extra = p['Nb'] * p['C_bwd'] * elsize + p['Nb'] * acc
        small = p['C_bwd'] == min(V, 256)      # the narrowest block (256 classes) is the floor of the plan
        assert extra <= p['budget'] or small, (p, extra)
        assert p['R_fwd'] * p['Nb_fwd'] >= N and p['Nb_fwd'] * p['C_fwd'] * elsize <= p['budget'], p   # the forward: within the budget always


@pytest.mark.skipif(not hasattr(torch.nn, 'LinearCrossEntropyOptions'), reason='needs torch >= 2.13 (F.linear_cross_entropy with options)')
def test_torch_213_linear_cross_entropy_loss():
    "The claim of 03a about PyTorch's own chunked loss: in bf16 it returns a bf16 loss that is far off when the batch spans many chunks (20 draws here: 2.7-4.0%), close when it is one chunk."
    import torch.nn.functional as F
    x = torch.randn(2048, 64).bfloat16(); w = (torch.randn(4096, 64) / 8).bfloat16(); t = torch.randint(0, 4096, (2048,))
    ref = float(F.cross_entropy(x.double() @ w.double().T, t))
    many = F.linear_cross_entropy(x, w, t, options=torch.nn.LinearCrossEntropyOptions())
    one = F.linear_cross_entropy(x, w, t, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2048))
    assert many.dtype == torch.bfloat16 == one.dtype
    assert abs(float(one) - ref) / ref <= 2 ** -7, (float(one), ref)          # within two bf16 roundings (20 draws here: at most 0.37%)
    assert abs(float(many) - ref) / ref > 1e-2, (float(many), ref)           # the chunks' sum kept in bf16
    ours = linear_cross_entropy(x, w, t, impl='torch')
    assert ours.dtype == torch.float32 and abs(float(ours) - ref) / ref < 1e-3

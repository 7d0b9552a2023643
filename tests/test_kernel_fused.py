"""Tests of `lsnb.kernel_fused` (issue 20) through Triton's CPU interpreter at tiny sizes, against float64 references on
fresh random inputs; and the command-line contract of `tools/bench_kernel_v2.py` (help, no CUDA)."""
import os
os.environ.setdefault('TRITON_INTERPRET', '1')   # the Triton kernels on the CPU, before lsnb.kernel is imported
import subprocess, sys
from pathlib import Path
import pytest, torch
import torch.nn.functional as F
from lsnb.kernel import reference_loss, linear_cross_entropy, INTERPRETED
from lsnb.kernel_fused import fused_linear_cross_entropy as fused, FILTER_EPS

DEV = 'cuda' if torch.cuda.is_available() else 'cpu'
REPO = Path(__file__).resolve().parents[1]
needs_kernel = pytest.mark.skipif(DEV == 'cpu' and not INTERPRETED, reason='no CUDA and TRITON_INTERPRET was not set before lsnb.kernel was imported')


def _rel(a, b): return float((a.double() - b.double()).norm() / b.double().norm())


def _grads(dtype, N, d, V, red, alpha, scale=2.0, **kw):
    x = torch.randn(N, d, dtype=torch.float64, device=DEV); w = torch.randn(V, d, dtype=torch.float64, device=DEV) * scale / d**0.5
    t = torch.randint(0, V, (N,), device=DEV); t[torch.rand(N, device=DEV) < 0.2] = -100
    xl, wl = x.to(dtype).requires_grad_(), w.to(dtype).requires_grad_()
    xr, wr = xl.detach().double().requires_grad_(), wl.detach().double().requires_grad_()
    out = fused(xl, wl, t, label_smoothing=alpha, reduction=red, **kw)
    ref = reference_loss(xr, wr, t, label_smoothing=alpha, reduction=red)
    up = torch.randn(N, dtype=torch.float64, device=DEV) if red == 'none' else torch.tensor(0.7, dtype=torch.float64, device=DEV)
    (out.double() * up).sum().backward(); (ref * up).sum().backward()
    return _rel(out.detach(), ref.detach()), _rel(xl.grad, xr.grad), _rel(wl.grad, wr.grad)


@needs_kernel
@pytest.mark.parametrize('red,alpha', [('mean', 0.1), ('sum', 0.0), ('none', 0.1)])
def test_fp32_against_float64(red, alpha):
    assert max(_grads(torch.float32, 21, 16, 300, red, alpha, filter_eps=FILTER_EPS, dw_chunk=48)) < 2e-5


@needs_kernel
def test_bf16_against_float64():
    assert max(_grads(torch.bfloat16, 21, 16, 100, 'mean', 0.1)) < 3e-2


def _tiled_grads(x, w, t, alpha, eps, block=(16, 16), inside=False):
    "float64 model of a filtering kernel (mean reduction); inside=True: -alpha/V in the tile before the filter (the bug)."
    N, V = x.shape[0], w.shape[0]
    G = torch.softmax(x @ w.T, -1) - (1 - alpha) * F.one_hot(t, V).double()
    if inside: G = G - alpha / V
    keep = torch.zeros_like(G, dtype=torch.bool)
    bn, bv = block
    for i in range(0, N, bn):
        for j in range(0, V, bv): keep[i:i + bn, j:j + bv] = G[i:i + bn, j:j + bv].abs().max() >= eps
    G = torch.where(keep, G, 0.0) / N
    if not inside: G = G - alpha / V / N
    return G @ w, G.T @ x


@needs_kernel
def test_filtering_keeps_smoothing_exact_and_in_tile_variant_fails():
    N, d, V, a, eps = 48, 16, 288, 0.1, 2e-3          # alpha / V = 3.5e-4 < eps: the in-tile term passes the filter
    x = torch.randn(N, d, dtype=torch.float64, device=DEV); x[:, 0] = 5.0
    w = torch.randn(V, d, dtype=torch.float64, device=DEV) / d**0.5; w[:32, 0] = 1.5; w[32:, 0] = -1.5
    t = torch.randint(0, 32, (N,), device=DEV)
    xl, wl = x.float().requires_grad_(), w.float().requires_grad_()
    l, st = fused(xl, wl, t, label_smoothing=a, filter_eps=eps, return_stats=True); l.backward()
    xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()
    reference_loss(xr, wr, t, label_smoothing=a).backward()
    bug_dx, bug_dw = _tiled_grads(x, w, t, a, eps, st['block'], inside=True)
    ok_dx, ok_dw = _tiled_grads(x, w, t, a, eps, st['block'])
    assert int(st['skipped_tiles']) / st['tiles'] > 0.6
    ours = max(_rel(xl.grad, xr.grad), _rel(wl.grad, wr.grad))
    assert ours < 1e-4 and max(_rel(xl.grad, ok_dx), _rel(wl.grad, ok_dw)) < 2e-5
    assert _rel(bug_dw, wr.grad) > 1e-2 and max(_rel(bug_dx, xr.grad), _rel(bug_dw, wr.grad)) > 100 * ours


@needs_kernel
def test_telemetry_against_float64():
    x = torch.randn(19, 16, dtype=torch.float64, device=DEV); w = torch.randn(100, 16, dtype=torch.float64, device=DEV) * 0.7
    t = torch.randint(0, 100, (19,), device=DEV); t[0] = -100
    _, st = fused(x.float(), w.float(), t, temperature=1.3, return_stats=True)
    y = x @ w.T / 1.3; p = torch.softmax(y, -1)
    torch.testing.assert_close(st['lse'], torch.logsumexp(y, -1).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(st['entropy'], -(p * p.log()).sum(-1).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(st['top_prob'], p.max(-1).values.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(st['target_prob'][1:], p[1:].gather(1, t[1:, None])[:, 0].float(), rtol=1e-5, atol=1e-6)
    assert st['target_prob'][0].isnan()


@needs_kernel
def test_deterministic_mode_bitwise_and_exact():
    assert max(_grads(torch.float32, 21, 16, 300, 'mean', 0.1, deterministic=True, dw_chunk=64)) < 2e-5
    x = torch.randn(24, 16, device=DEV).bfloat16().requires_grad_(); w = (torch.randn(100, 16, device=DEV) / 4).bfloat16().requires_grad_()
    t = torch.randint(0, 100, (24,), device=DEV)
    runs = []
    for _ in range(2):
        x.grad = w.grad = None
        fused(x, w, t, label_smoothing=0.1, deterministic=True).backward()
        runs.append((x.grad.clone(), w.grad.clone()))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@needs_kernel
def test_dispatch_and_errors():
    x = torch.randn(3, 5, 16, device=DEV); w = torch.randn(60, 16, device=DEV) / 4; t = torch.randint(0, 60, (3, 5), device=DEV)
    assert torch.equal(linear_cross_entropy(x, w, t, label_smoothing=0.1, impl='fused'), fused(x, w, t, label_smoothing=0.1))
    with pytest.raises(ValueError, match="bias is not supported by impl='fused'"):
        linear_cross_entropy(x, w, t, bias=torch.zeros(60, device=DEV), impl='fused')
    with pytest.raises(ValueError, match='filter_eps must be'): fused(x, w, t, filter_eps=float('nan'))


def test_bench_help_and_no_cuda():
    script = str(REPO / 'tools' / 'bench_kernel_v2.py')
    h = subprocess.run([sys.executable, script, '--help'], capture_output=True, text=True, timeout=60)
    assert h.returncode == 0 and '--dry-run' in h.stdout and '--max-seconds' in h.stdout
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    r = subprocess.run([sys.executable, script, '--out', os.devnull], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'no CUDA GPU' in r.stderr, (r.returncode, r.stderr)
    b = subprocess.run([sys.executable, script, '--out', os.devnull, '--shapes', 'gpt-5'], capture_output=True, text=True, timeout=60)
    assert b.returncode == 2 and '--shapes: unknown shape(s) gpt-5' in b.stderr


def test_bench_real_inputs_arguments(tmp_path):
    "--real is checked before any work: a missing GGUF file, a name without a file, no records file; each exit status 2 naming it."
    script = str(REPO / 'tools' / 'bench_kernel_v2.py')
    run = lambda *a: subprocess.run([sys.executable, script, '--out', os.devnull, *a], capture_output=True, text=True, timeout=60)
    r = run('--real', 'gemma=nowhere.gguf')
    assert r.returncode == 2 and "--real: no GGUF file 'nowhere.gguf' for 'gemma'" in r.stderr, r.stderr
    r = run('--real', 'gemma')
    assert r.returncode == 2 and "--real: 'gemma' needs =GGUF" in r.stderr, r.stderr
    g = tmp_path / 'm.gguf'; g.write_bytes(b'GGUF')
    r = run('--real', f'gemma={g}')
    assert r.returncode == 2 and '--real needs --real-records' in r.stderr, r.stderr
    r = run('--real', f'gemma={g}', '--real-records', str(g), '--real-tokens', '0')
    assert r.returncode == 2 and '--real-tokens must be >= 1' in r.stderr, r.stderr


def test_bench_shapes_are_the_projects():
    import importlib.util
    from lsnb.kernel_bench import SHAPES
    spec = importlib.util.spec_from_file_location('bench_kernel_v2', REPO / 'tools' / 'bench_kernel_v2.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    assert mod.SHAPES == SHAPES

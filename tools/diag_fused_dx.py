"""GPU diagnosis of the fused backward's dX (issue 20): the combined dX+dW tile kernel of commit 717a87b under variations, and today's
path, against float64 at N=4096, d=640, V=32768, bf16, alpha=0.1 (filtering off unless said).

    git show 717a87b:lsnb/kernel_fused.py > lsnb/kernel_fused_old.py
    python tools/diag_fused_dx.py OUT.json        # needs CUDA

The saved run is nbs/results/kernel_fused_dx_diag_h200.json (rendered in nbs/03c_kernel_fused.ipynb).
"""
import json, sys, time, torch, torch.nn.functional as F
import lsnb.kernel_fused as new
import lsnb.kernel_fused_old as old
torch.manual_seed(0)
dev = 'cuda'
N, d, V, a = 4096, 640, 32768, 0.1
x = torch.randn(N, d, device=dev).bfloat16(); w = (torch.randn(V, d, device=dev) / d**0.5).bfloat16()
t = torch.randint(0, V, (N,), device=dev)
x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
F.cross_entropy(x64 @ w64.T, t, label_smoothing=a).backward()
DX, DW = x64.grad, w64.grad
def rel(p, q): return float((p.double() - q).norm() / q.norm())
g = torch.full((N,), 1.0 / N, device=dev)
rows = []
def run(label, mod, need_w=True, filt=None, det=False, try2=None, group_n=None):
    mod._CHOSEN.clear()
    saved = mod._TRY[2]
    if try2: mod._TRY[2] = try2
    try:
        lse = mod._fused_forward(x, w, t, inv_temp=1.0, softcap=None)['lse']
        kw = dict(need_x=True, need_w=need_w, alpha=a, inv_temp=1.0, softcap=None, z_loss=0.0, filter_eps=filt, deterministic=det)
        if group_n is not None:   # the old combined kernel with another GROUP_N: launch it here as _fused_backward does
            dx = torch.zeros(N, d, device=dev); dw = torch.zeros(V, d, device=dev); skip = torch.zeros(1, device=dev, dtype=torch.int32)
            gmax = g.abs().amax().reshape(1)
            dx.addr_(g, mod._colsum(w), alpha=-(a / V))
            consts = (1.0, 1.0, 1.0 - a, a / V, 0.0, 0.0)
            args = (x, w, t, lse, g, gmax, dx, dw, skip, N, d, 0, V, x.stride(0), w.stride(0), dx.stride(0), dw.stride(0)) + consts
            flags = dict(HAS_SOFTCAP=False, SMOOTH_IN_TILE=False, FILTER=False, DOT_PREC=None, UPCAST=False, COMPUTE_DX=True, COMPUTE_DW=True)
            mod._launch(mod._fused_bwd_kernel, lambda c: (triton.cdiv(N, c['BLOCK_N']) * triton.cdiv(V, c['BLOCK_V']),), args, dict(flags, GROUP_N=group_n), x)
            dw = dw + (-(a / V)) * mod._colsum(x, g)
        else:
            dx, dw, *_ = mod._fused_backward(x, w, t, lse, g * 1, **kw)
        torch.cuda.synchronize()
        r = dict(label=label, err_dx=rel(dx, DX), err_dw=None if dw is None else rel(dw, DW))
    except Exception as e:
        r = dict(label=label, error=f'{type(e).__name__}: {e}'[:300])
    mod._TRY[2] = saved
    print(r, flush=True); rows.append(r)
import triton
run('old default (combined kernel, dX+dW)', old)
run('old, dX only (COMPUTE_DW=False)', old, need_w=False)
run('old, GROUP_N=1', old, group_n=1)
run('old, 1 stage', old, try2=[(128, 128, 64, 8, 1)])
run('old, 64x64x32 w4 s2', old, try2=[(64, 64, 32, 4, 2)])
run('old, deterministic', old, det=True)
run('new default', new)
run('new default, filter auto', new, filt=new.FILTER_EPS)
run('new, dX only', new, need_w=False)
run('new, deterministic', new, det=True)
json.dump(dict(shape=[N, d, V], alpha=a, device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
               rows=rows), open(sys.argv[1], 'w'), indent=1)

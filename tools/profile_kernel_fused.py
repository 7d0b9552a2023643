#!/usr/bin/env python
"""Where the fused kernel's time goes: each of its kernels alone, under a grid of tile configurations (issue 20).

On one CUDA GPU, bf16, random inputs (weights x 1/sqrt(d), as in `bench_kernel_v2.py`), at the issue's shapes: the
forward kernel (one product per tile, 2 N d V flops), the dX kernel and the two dW kernels (each recomputes the tile and
takes one more product, 4 N d V flops), each under every configuration of `CONFIGS` (BLOCK_N, BLOCK_V, BLOCK_D, warps,
stages), with gradient filtering off (every tile computed: the cost on peaked, real-model inputs) and, for the
configuration the library uses today, on (the backward kernels only: the forward does not filter). Beside them, cuBLAS's x @ w.T at the same shape (2 N d V flops, the rate a
tile kernel could hope for). Median of `--reps` launches after a warm-up (CUDA events); TFLOP/s from the flops above.

Results are rewritten atomically after every measurement, and a rerun with the same `--out` skips what is there
(resumable across calls on a machine that is taken back); `--max-seconds` stops cleanly.

    LSNB_COMMIT=$(git rev-parse --short HEAD) python tools/profile_kernel_fused.py --out nbs/results/kernel_fused_profile_h200.json
    python tools/profile_kernel_fused.py --dry-run --out prof_dry.json     # CPU self-check (Triton interpreter)

Without CUDA (and without --dry-run) it prints one line and exits with status 2.
"""
import argparse, json, math, os, statistics, sys, time, traceback
from pathlib import Path

from lsnb.kernel_bench_args import SHAPES

# (BLOCK_N, BLOCK_V, BLOCK_D, num_warps, num_stages); the first is the library's bf16 default today (`_TRY[2][0]`)
CONFIGS = [(128, 128, 64, 8, 3), (128, 256, 64, 8, 3), (256, 128, 64, 8, 3), (128, 128, 64, 4, 3), (128, 128, 64, 8, 4),
           (64, 128, 64, 4, 3), (128, 64, 64, 4, 3), (64, 256, 64, 8, 3), (128, 128, 128, 8, 2), (128, 256, 32, 8, 4),
           (256, 128, 32, 8, 3), (64, 64, 64, 4, 3)]
KERNELS = ('fwd', 'dx', 'dw', 'det_dw')
FLOPS = dict(fwd=2, dx=4, dw=4, det_dw=4, cublas=2)   # x N d V
ALPHA = 0.1
DRY_SHAPES = {'tiny': (64, 32, 512)}
DRY_CONFIGS = [(16, 16, 16, 4, 1), (32, 16, 16, 4, 1)]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='profile_kernel_fused.py', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--out', required=True, help='JSON file (rewritten atomically after every measurement; a rerun resumes from it)')
    p.add_argument('--shapes', default='gemma-3-270m,llama-3-8b,gemma-2-2b,qwen2.5-7b',
                   help=f'comma-separated shape names from {", ".join(SHAPES)}, in the order to run them')
    p.add_argument('--kernels', default=','.join(KERNELS), help=f'comma-separated from {", ".join(KERNELS)}')
    p.add_argument('--reps', type=int, default=5, help='timed launches per measurement (median; default 5)')
    p.add_argument('--max-seconds', type=float, default=300.0, help='stop starting measurements after this many seconds')
    p.add_argument('--dry-run', action='store_true', help='CPU self-check through the Triton interpreter at tiny sizes')
    a = p.parse_args(argv)
    a.shapes = [s for s in a.shapes.split(',') if s]
    bad = [s for s in a.shapes if s not in SHAPES]
    if bad: p.error(f'--shapes: unknown shape(s) {", ".join(bad)}; choose from {", ".join(SHAPES)}')
    a.kernels = [s for s in a.kernels.split(',') if s]
    bad = [s for s in a.kernels if s not in KERNELS]
    if bad: p.error(f'--kernels: unknown kernel(s) {", ".join(bad)}; choose from {", ".join(KERNELS)}')
    if a.reps < 1: p.error(f'--reps must be >= 1, got {a.reps}')
    if not a.max_seconds > 0: p.error(f'--max-seconds must be > 0, got {a.max_seconds}')
    return a


def key(shape, kernel, cfg, filt): return f'{shape}|{kernel}|{"x".join(map(str, cfg)) if cfg else "-"}|{"filter" if filt else "nofilter"}'


def main(argv=None):
    a = parse_args(argv)
    if a.dry_run: os.environ.setdefault('TRITON_INTERPRET', '1')
    import torch
    if not a.dry_run and not torch.cuda.is_available():
        print('profile_kernel_fused.py: no CUDA device here (use --dry-run for the CPU self-check)'); return 2
    from lsnb.core import atomic_write_json
    import lsnb.kernel_fused as kf
    dev = 'cpu' if a.dry_run else 'cuda'
    shapes = DRY_SHAPES if a.dry_run else {k: SHAPES[k] for k in a.shapes}
    configs = DRY_CONFIGS if a.dry_run else CONFIGS
    out = Path(a.out)
    res = json.loads(out.read_text()) if out.exists() else {}
    if res.get('configs') not in (None, [list(c) for c in configs]):
        print(f'profile_kernel_fused.py: --out {out} holds another configuration grid; use a new --out'); return 2
    res.setdefault('meta', dict(commit=os.environ.get('LSNB_COMMIT'), torch=torch.__version__, alpha=ALPHA, reps=a.reps,
                                device=torch.cuda.get_device_name(0) if not a.dry_run else 'cpu (Triton interpreter)',
                                command='python tools/profile_kernel_fused.py ' + ' '.join(Path(x).name if x.startswith('/') else x for x in (argv or sys.argv[1:]))))
    import triton
    res['meta']['triton'] = triton.__version__
    res['configs'] = [list(c) for c in configs]; res['flops_per_NdV'] = FLOPS
    rows = res.setdefault('rows', {})
    t0 = time.time()
    def save(): atomic_write_json(out, res)
    def timed(fn):
        fn()
        if a.dry_run:
            ts = []
            for _ in range(a.reps): s = time.perf_counter(); fn(); ts.append(1e3 * (time.perf_counter() - s))
            return ts
        torch.cuda.synchronize(); ts = []
        for _ in range(a.reps):
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record(); fn(); e1.record(); e1.synchronize(); ts.append(e0.elapsed_time(e1))
        return ts
    res['meta']['calls'] = res['meta'].get('calls', 0) + 1
    stopped = False
    saved_try = list(kf._TRY[2])
    for shape, (N, d, V) in shapes.items():
        if stopped: break
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.randn(N, d, device=dev, generator=g).to(torch.bfloat16)
        w = (torch.randn(V, d, device=dev, generator=g) / math.sqrt(d)).to(torch.bfloat16)
        t = torch.randint(0, V, (N,), device=dev, generator=g)
        gr = torch.full((N,), 1.0 / N, device=dev)
        lse = kf._fused_forward(x, w, t, inv_temp=1.0, softcap=None)['lse']
        ck = key(shape, 'cublas', None, False)
        if ck not in rows and not a.dry_run:
            try:
                rows[ck] = dict(shape=shape, N=N, d=d, V=V, kernel='cublas', times_ms=timed(lambda: x @ w.T))
            except Exception as e: rows[ck] = dict(shape=shape, kernel='cublas', error=f'{type(e).__name__}: {e}'[:500])
            torch.cuda.empty_cache(); save()
        for kern in a.kernels:
            for ci, cfg in enumerate(configs):
                for filt in ((False, True) if ci == 0 and kern != 'fwd' else (False,)):
                    k = key(shape, kern, cfg, filt)
                    if k in rows: continue
                    if time.time() - t0 > a.max_seconds: stopped = True; break
                    if not a.dry_run: kf._TRY[2] = [cfg]
                    else: kf._TRY_INTERPRETER[:] = [cfg]
                    kf._CHOSEN.clear()
                    fe = kf.FILTER_EPS if filt else None
                    common = dict(alpha=ALPHA, inv_temp=1.0, softcap=None, z_loss=0.0, filter_eps=fe)
                    fn = {'fwd': lambda: kf._fused_forward(x, w, t, inv_temp=1.0, softcap=None),
                          'dx': lambda: kf._fused_backward(x, w, t, lse, gr, need_x=True, need_w=False, **common),
                          'dw': lambda: kf._fused_backward(x, w, t, lse, gr, need_x=False, need_w=True, **common),
                          'det_dw': lambda: kf._fused_backward(x, w, t, lse, gr, need_x=False, need_w=True, deterministic=True, **common)}[kern]
                    row = dict(shape=shape, N=N, d=d, V=V, kernel=kern, config=list(cfg), filter=filt)
                    s0 = time.time()
                    try:
                        row['times_ms'] = [round(v, 4) for v in timed(fn)]
                        if kern != 'fwd':
                            _, _, skip, ntiles, _ = fn()
                            row['skipped_tiles'], row['tiles'] = int(skip.item()), int(ntiles)
                    except Exception as e:
                        row['error'] = f'{type(e).__name__}: {e}'[:500]
                        if not isinstance(e, kf._TOO_BIG): row['traceback'] = traceback.format_exc()[-1500:]
                    row['wall_s'] = round(time.time() - s0, 2)
                    rows[k] = row; save()
                    if 'times_ms' in row:
                        ms = statistics.median(row['times_ms'])
                        print(f'[{time.time() - t0:6.1f}s] {shape:>13} {kern:>6} {cfg} filter={filt!s:5} {ms:9.2f} ms '
                              f'{FLOPS[kern] * N * d * V / ms / 1e9:7.1f} TFLOP/s', flush=True)
                    else: print(f'[{time.time() - t0:6.1f}s] {shape:>13} {kern:>6} {cfg} {row["error"][:150]}', flush=True)
                if stopped: break
            if stopped: break
        del x, w, t, gr, lse
        if not a.dry_run: torch.cuda.empty_cache()
    kf._TRY[2] = saved_try
    for r in rows.values():
        if 'times_ms' in r:
            r['ms'] = statistics.median(r['times_ms'])
            r['tflops'] = FLOPS[r['kernel']] * r['N'] * r['d'] * r['V'] / r['ms'] / 1e9
    res['meta']['complete'] = not stopped and all(key(s, k, c, f) in rows for s in shapes for k in a.kernels
                                                  for i, c in enumerate(configs) for f in ((False, True) if i == 0 and k != 'fwd' else (False,)))
    save()
    print(f'profile_kernel_fused.py: {len(rows)} measurements in {out.name}, complete={res["meta"]["complete"]}')
    return 0


if __name__ == '__main__': sys.exit(main())

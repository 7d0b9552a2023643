#!/usr/bin/env python
"""Benchmark of the fused linear cross-entropy (`lsnb.kernel_fused`, issue 20) and the class-blocked path (`lsnb.kernel_vchunk`) against the chunked path and the peers.

On one CUDA GPU, bf16, forward + backward of the loss from hidden states: median of `--reps` steps after warm-up (CUDA
events), peak memory above the inputs (`torch.cuda.max_memory_allocated` after a reset, minus what was allocated
before the step: the gradients of x and w are part of it, as in the floor), at the shapes of issue 20 and an N sweep;
errors against float64 on a 1024-token slice (normal and extreme logits); the share of backward tiles that filtering
skips. Each arm runs in its own try/except (its error string is recorded); arms that would run past `--max-seconds`
are skipped with that reason. Results are rewritten atomically after every arm. With `--real NAME=GGUF`, the arms also
run on that model's own hidden states at labelled positions of `--real-records` and its head (the inputs a training
step gives; phase 'real', with the filtering share and the errors against float64).

    LSNB_COMMIT=$(git rev-parse --short HEAD) python tools/bench_kernel_v2.py --out nbs/results/kernel_v2_h200.json
    python tools/bench_kernel_v2.py --quick --out kernel_v2_quick.json      # one shape, a few arms (~1 min)
    python tools/bench_kernel_v2.py --dry-run --out kernel_v2_dry.json      # CPU self-check (Triton interpreter, ~3 min)
    python tools/bench_kernel_v2.py --real gemma-3-270m=<gguf> --real-records alpaca_data.json.gz --out kernel_v2_real.json

Without CUDA (and without --dry-run) it prints one line and exits with status 2.
"""
import argparse, gc, math, os, re, statistics, sys, time, traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from lsnb.kernel_bench_args import SHAPES   # name: (N tokens, d, V); a module without torch, so --help stays fast
SWEEP_SHAPE = 'gemma-3-270m'
SWEEP_N = (2048, 4096, 8192, 16384, 32768, 65536)
ALPHA = 0.1
PEAK_TFLOPS = 790.0          # the floor: 6 N d V flops at this rate (issue 20)
SCALES = (1.0, 2.0)          # weights x scale / sqrt(d): logits of standard deviation ~ scale
EXTREME_SCALE = 300.0        # |z| up to ~1e3
ARMS = ('fused_a0.1', 'fused_a0', 'fused_a0.1_nofilter', 'fused_a0.1_det', 'vchunk_a0.1', 'vchunk_a0', 'vchunk_a0.1_b128',
        'vchunk_a0.1_b512', 'chunked', 'chunked_c1024', 'eager', 'compile', 'liger', 'cce', 'torch_lce_a0', 'quack')
VCHUNK_BUDGETS = {'vchunk_a0.1_b128': 128, 'vchunk_a0.1_b512': 512}   # MiB (the default: max(32 MiB, 5% of the gradients))
DRY_SHAPES = {'tiny': (48, 32, 300)}
# saved results name no folder of this machine (tests/test_repo.py): such paths in error strings become <path>/name
_MACHINE = re.compile(r'(?<![\w.~$/-])/(?:work|root|home|tmp|var|private|opt|mnt|media|scratch|data|srv|content|kaggle|Users|usr)/[^\s\'"`)\]},;:<>|*]*')


def _scrub(o):
    if isinstance(o, str): return _MACHINE.sub(lambda m: '<path>/' + m.group(0).rstrip('/').rsplit('/', 1)[-1], o)
    if isinstance(o, dict): return {k: _scrub(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return [_scrub(v) for v in o]
    return o
DRY_SWEEP = (32, 64)


def torch_linear_ce(torch):
    """PyTorch's own chunked `F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())` (torch >= 2.13) as f(x, w, t).

    On an older torch, its two pure-Python files (`torch/nn/modules/linear_cross_entropy.py` and
    `linear_cross_entropy_options.py` of a 2.13 install) are loaded from the folder `LSNB_TORCH_LCE_DIR` and called the way
    `F.linear_cross_entropy` calls them for 2-D input. Its chunked path takes label_smoothing == 0 only (with smoothing it
    warns and computes the materialised reference), so this arm is alpha = 0. Returns (f, how)."""
    F = torch.nn.functional
    if hasattr(F, 'linear_cross_entropy') and hasattr(torch.nn, 'LinearCrossEntropyOptions'):
        opts = torch.nn.LinearCrossEntropyOptions()
        return (lambda x, w, t: F.linear_cross_entropy(x, w, t, options=opts)), f'torch {torch.__version__}'
    d = os.environ.get('LSNB_TORCH_LCE_DIR')
    if not d: raise ImportError(f'torch {torch.__version__} has no F.linear_cross_entropy and LSNB_TORCH_LCE_DIR is not set')
    import importlib.util
    mods = {}
    for name in ('linear_cross_entropy_options', 'linear_cross_entropy'):
        spec = importlib.util.spec_from_file_location(f'_lsnb_torch213_{name}', Path(d) / f'{name}.py')
        m = importlib.util.module_from_spec(spec); sys.modules[spec.name] = m; spec.loader.exec_module(m); mods[name] = m
    Opt, op = mods['linear_cross_entropy_options'].LinearCrossEntropyOptions, mods['linear_cross_entropy']._linear_cross_entropy_batch_chunked
    def f(x, w, t):
        o = Opt()._adjust(num_batches=x.shape[0], in_features=x.shape[1], num_classes=w.shape[0], dtype=x.dtype, device=x.device)
        return op(x, w, t, None, None, 'mean', -100, 0.0, o.batch_chunk_size, o.acc_policy, o.acc_dtype, o.allow_retain_graph,
                  x.requires_grad, w.requires_grad, False)[0]
    return f, f'torch 2.13 files on torch {torch.__version__}'


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='bench_kernel_v2.py', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--out', required=True, help='JSON file to write (atomically, after every arm)')
    p.add_argument('--shapes', default=','.join(SHAPES), help=f'comma-separated shape names from {", ".join(SHAPES)} (default: all)')
    p.add_argument('--arms', default=','.join(ARMS), help=f'comma-separated arms from {", ".join(ARMS)} (default: all)')
    p.add_argument('--quick', action='store_true', help='gemma-3-270m only, fused/chunked/eager/cce arms, no sweep, 5 repeats')
    p.add_argument('--no-sweep', action='store_true', help='leave out the N sweep')
    p.add_argument('--reps', type=int, default=10, help='timed steps per arm (median reported; default 10)')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per arm first (compilation; default 2)')
    p.add_argument('--max-seconds', type=float, default=330.0,
                   help='time budget: arms that would start after it are skipped with a recorded reason (default 330)')
    p.add_argument('--dry-run', action='store_true', help='CPU self-check through the Triton interpreter at tiny sizes (no CUDA)')
    p.add_argument('--real', default='', help='comma-separated NAME=GGUF: also run on that model\'s own hidden states and head '
                   '(lsnb.kernel_bench.real_head_inputs on --real-records); NAME "tiny" with --dry-run: the offline test model')
    p.add_argument('--real-records', type=Path, help='SFT records (Alpaca .json/.jsonl[.gz]) for --real')
    p.add_argument('--real-tokens', type=int, default=8192, help='labelled positions per --real model (default 8192)')
    p.add_argument('--real-cache', type=Path, help='where lsnb.models caches the GGUF conversions (default: its own)')
    a = p.parse_args(argv)
    a.shapes = [s for s in a.shapes.split(',') if s]
    bad = [s for s in a.shapes if s not in SHAPES]
    if bad: p.error(f'--shapes: unknown shape(s) {", ".join(bad)}; choose from {", ".join(SHAPES)}')
    a.arms = [s for s in a.arms.split(',') if s]
    bad = [s for s in a.arms if s not in ARMS]
    if bad: p.error(f'--arms: unknown arm(s) {", ".join(bad)}; choose from {", ".join(ARMS)}')
    if a.reps < 1: p.error(f'--reps must be >= 1, got {a.reps}')
    if a.warmup < 1: p.error(f'--warmup must be >= 1, got {a.warmup}')
    if not a.max_seconds > 0: p.error(f'--max-seconds must be > 0, got {a.max_seconds}')
    a.real = dict(kv.split('=', 1) if '=' in kv else (kv, '') for kv in a.real.split(',') if kv)
    if a.dry_run and any(name != 'tiny' for name in a.real): p.error('--real with --dry-run takes only the name tiny (the offline test model)')
    for name, f in a.real.items():
        if name == 'tiny' and a.dry_run: continue
        if not f: p.error(f'--real: {name!r} needs =GGUF (a GGUF file of the model)')
        if not Path(f).is_file(): p.error(f'--real: no GGUF file {f!r} for {name!r}')
    if a.real and not a.dry_run and (a.real_records is None or not a.real_records.is_file()):
        p.error(f'--real needs --real-records, a file of SFT records (got {a.real_records})')
    if a.real_tokens < 1: p.error(f'--real-tokens must be >= 1, got {a.real_tokens}')
    if a.quick:
        a.shapes = ['gemma-3-270m'] if 'gemma-3-270m' in a.shapes else a.shapes[:1]
        a.arms = [x for x in a.arms if x in ('fused_a0.1', 'fused_a0', 'chunked', 'eager', 'cce')]
        a.no_sweep, a.reps = True, min(a.reps, 5)
    return a


class Bench:
    def __init__(self, args):
        import torch
        self.torch, self.args = torch, args
        self.dry = args.dry_run
        self.dev = 'cpu' if self.dry else 'cuda'
        self.t0 = time.time()
        self.shapes = DRY_SHAPES if self.dry else {k: SHAPES[k] for k in args.shapes}
        self.sweep = () if args.no_sweep else (DRY_SWEEP if self.dry else SWEEP_N)
        self.sweep_shape = 'tiny' if self.dry else SWEEP_SHAPE
        self.res = dict(meta=self._meta(), floor={}, results=[], accuracy=[], filter_share=[], bitwise=[], skipped=[], real={})
        self.arms, reasons = self._make_arms()
        for arm, why in reasons.items(): self.res['skipped'].append(dict(arm=arm, shape='*', reason=why))
        self.save()

    # ---------------------------------------------------------------- bookkeeping
    def _meta(self):
        torch = self.torch
        from lsnb.core import portable_path
        argv = [portable_path(a) for a in sys.argv]
        m = dict(argv=argv, command=' '.join(argv), commit=os.environ.get('LSNB_COMMIT'), torch=torch.__version__,
                 dry_run=self.dry, started=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), max_seconds=self.args.max_seconds,
                 reps=self.args.reps, warmup=self.args.warmup, alpha=ALPHA, peak_tflops=PEAK_TFLOPS, scales=SCALES,
                 autotune=os.environ.get('LSNB_FUSED_AUTOTUNE') == '1')
        try:
            import triton; m['triton'] = triton.__version__
        except Exception as e: m['triton'] = repr(e)
        for mod in ('liger_kernel', 'cut_cross_entropy', 'quack_kernels', 'nvidia_cutlass_dsl'):
            try:
                from importlib.metadata import version
                m[mod] = version(mod.replace('_', '-'))
            except Exception: m[mod] = None
        m['device'] = torch.cuda.get_device_name(0) if not self.dry else 'cpu (Triton interpreter)'
        return m

    def save(self):
        from lsnb.core import atomic_write_json
        self.res['meta']['elapsed_s'] = round(time.time() - self.t0, 2)
        atomic_write_json(self.args.out, _scrub(self.res))

    def over(self): return time.time() - self.t0 > self.args.max_seconds

    def skip(self, shape, arm, reason, **kw):
        self.res['skipped'].append(dict(shape=shape, arm=arm, reason=reason, **kw)); self.save()

    def sync(self):
        if not self.dry: self.torch.cuda.synchronize()

    def free(self):
        gc.collect()
        if not self.dry: self.torch.cuda.empty_cache()

    # ---------------------------------------------------------------- arms
    def _make_arms(self):
        torch = self.torch
        import torch.nn.functional as F
        from lsnb.kernel import linear_cross_entropy
        from lsnb.kernel_fused import fused_linear_cross_entropy as fused
        from lsnb.kernel_vchunk import vchunk_linear_cross_entropy as vchunk
        want = set(self.args.arms)
        dry_b = {k: 0.02 for k in VCHUNK_BUDGETS}   # the dry run's tiny shape: budgets that give several blocks
        arms, why = {}, {}
        def plain(x, w, t, a): return F.cross_entropy(F.linear(x, w).float(), t, label_smoothing=a)
        cand = {
            'fused_a0.1': (lambda x, w, t: fused(x, w, t, label_smoothing=ALPHA), ALPHA),
            'fused_a0': (lambda x, w, t: fused(x, w, t), 0.0),
            'fused_a0.1_nofilter': (lambda x, w, t: fused(x, w, t, label_smoothing=ALPHA, filter_eps=None), ALPHA),
            'fused_a0.1_det': (lambda x, w, t: fused(x, w, t, label_smoothing=ALPHA, deterministic=True), ALPHA),
            'vchunk_a0.1': (lambda x, w, t, **kw: vchunk(x, w, t, label_smoothing=ALPHA, **kw), ALPHA),
            'vchunk_a0': (lambda x, w, t, **kw: vchunk(x, w, t, **kw), 0.0),
            **{k: ((lambda mib: lambda x, w, t, **kw: vchunk(x, w, t, label_smoothing=ALPHA, budget_mib=mib, **kw))(dry_b[k] if self.dry else mib), ALPHA)
               for k, mib in VCHUNK_BUDGETS.items()},
            'chunked': (lambda x, w, t: linear_cross_entropy(x, w, t, label_smoothing=ALPHA, impl='triton'), ALPHA),
            'chunked_c1024': (lambda x, w, t: linear_cross_entropy(x, w, t, label_smoothing=ALPHA, impl='triton', chunk_size=16 if self.dry else 1024), ALPHA),
            'eager': (lambda x, w, t: plain(x, w, t, ALPHA), ALPHA),
        }
        for k, v in cand.items():
            if k in want: arms[k] = v
        if 'compile' in want:
            if self.dry: why['compile'] = 'dry run: torch.compile left out (minutes of compilation on a CPU)'
            else:
                import torch._dynamo
                torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)
                comp = torch.compile(plain, dynamic=False)
                arms['compile'] = (lambda x, w, t: comp(x, w, t, ALPHA), ALPHA)
        if 'liger' in want:
            if self.dry: why['liger'] = 'dry run: Liger needs CUDA'
            else:
                try:
                    from liger_kernel.transformers.fused_linear_cross_entropy import LigerFusedLinearCrossEntropyLoss
                    lg = LigerFusedLinearCrossEntropyLoss(label_smoothing=ALPHA)
                    arms['liger'] = (lambda x, w, t: lg(w, x, t), ALPHA)
                except Exception as e: why['liger'] = f'import failed: {e!r}'[:500]
        if 'cce' in want:
            if self.dry: why['cce'] = 'dry run: CCE needs CUDA'
            else:
                try:
                    from cut_cross_entropy import linear_cross_entropy as cce
                    arms['cce'] = (lambda x, w, t: cce(x, w, t), 0.0)   # CCE's defaults (filter_eps='auto'), no smoothing
                except Exception as e: why['cce'] = f'import failed: {e!r}'[:500]
        if 'quack' in want:
            if self.dry: why['quack'] = 'dry run: QuACK needs CUDA (CuTe DSL)'
            else:
                try:
                    from quack.linear_cross_entropy import chunked_linear_cross_entropy as qce
                    arms['quack'] = (lambda x, w, t: qce(x, w, t), 0.0)   # QuACK's defaults (chunk_size 4096, tuned), no smoothing
                except Exception as e: why['quack'] = f'import failed: {e!r}'[:1000]
        if 'torch_lce_a0' in want:
            try:
                f, how = torch_linear_ce(torch)
                arms['torch_lce_a0'] = (f, 0.0); self.res['meta']['torch_lce'] = how
            except Exception as e: why['torch_lce_a0'] = f'{type(e).__name__}: {e}'[:500]
        return arms, why

    # ---------------------------------------------------------------- inputs and measurement
    def inputs(self, N, d, V, scale, seed=0):
        torch = self.torch
        g = torch.Generator(device=self.dev).manual_seed(seed)
        dt = torch.bfloat16
        x = torch.randn(N, d, device=self.dev, generator=g, dtype=torch.float32).to(dt)
        w = (torch.randn(V, d, device=self.dev, generator=g, dtype=torch.float32) * (scale / math.sqrt(d))).to(dt)
        t = torch.randint(0, V, (N,), device=self.dev, generator=g)
        return x, w, t

    def time_arm(self, fn, x, w, t):
        torch = self.torch
        xg, wg = x.detach().requires_grad_(), w.detach().requires_grad_()
        def step():
            xg.grad = wg.grad = None
            fn(xg, wg, t).backward()
        for _ in range(self.args.warmup): step()
        self.sync()
        xg.grad = wg.grad = None
        self.free()
        peak = None
        if not self.dry:
            torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
            step(); torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
        times = []
        for _ in range(self.args.reps):
            xg.grad = wg.grad = None
            if self.dry:
                s = time.perf_counter(); fn(xg, wg, t).backward(); times.append(1e3 * (time.perf_counter() - s))
            else:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record(); fn(xg, wg, t).backward(); b.record(); b.synchronize(); times.append(a.elapsed_time(b))
        xg.grad = wg.grad = None
        return dict(ms=statistics.median(times), times_ms=[round(v, 4) for v in times], peak_bytes=peak)

    def run_arm(self, shape, arm, x, w, t, scale, phase, **extra):
        if arm not in self.arms: return None
        N, d = x.shape; V = w.shape[0]
        if self.over():
            return self.skip(shape, arm, f'time budget --max-seconds={self.args.max_seconds:g} spent', N=N, scale=scale, phase=phase)
        fn, alpha = self.arms[arm]
        row = dict(shape=shape, N=N, d=d, V=V, scale=scale, arm=arm, alpha=alpha, phase=phase, **extra)
        t0 = time.time()
        try:
            row.update(self.time_arm(fn, x, w, t))
            fl = self.floor(N, d, V)
            row['x_floor_time'] = row['ms'] / fl['ms']
            if row['peak_bytes'] is not None: row['x_floor_mem'] = row['peak_bytes'] / fl['bytes']
        except Exception as e:
            row['error'] = f'{type(e).__name__}: {e}'[:2000]; row['traceback'] = traceback.format_exc()[-3000:]
        row['wall_s'] = round(time.time() - t0, 2)
        self.res['results'].append(row); self.free(); self.save()
        print(f"[{time.time() - self.t0:6.1f}s] {shape:>13} N={N:<6} s={scale:g} {arm:<20} "
              + (f"{row['ms']:8.2f} ms  {(row['peak_bytes'] or 0) / 1e9:6.2f} GB  x{row['x_floor_time']:.2f}" if 'ms' in row
                 else 'ERROR ' + row['error'][:200]), flush=True)
        return row

    def floor(self, N, d, V):
        return dict(ms=6 * N * d * V / (PEAK_TFLOPS * 1e12) * 1e3, bytes=(N * d + V * d) * 2)

    # ---------------------------------------------------------------- accuracy and filtering
    def accuracy(self, shape, x, w, t, case):
        "Errors of each arm's loss and gradients against float64 on a slice of at most 1024 tokens (vchunk arms: with the row blocks of the timed shape)."
        torch = self.torch
        from lsnb.kernel import reference_loss
        from lsnb.kernel_vchunk import _plan
        n = min(1024, x.shape[0]); xs, ts = x[:n], t[:n]
        refs = {}
        for alpha in sorted({a for arm, (_, a) in self.arms.items() if arm != 'compile'}):
            if self.over(): return self.skip(shape, 'accuracy', f'time budget --max-seconds={self.args.max_seconds:g} spent', case=case)
            xr, wr = xs.double().requires_grad_(), w.double().requires_grad_()
            l = reference_loss(xr, wr, ts, label_smoothing=alpha); l.backward()
            refs[alpha] = (float(l), xr.grad, wr.grad); del xr, wr, l
        rel = lambda a, b: float((a.double() - b).norm() / b.norm())
        for arm, (fn, alpha) in self.arms.items():
            if arm == 'compile': continue   # a new shape would recompile: torch.compile gives eager's numbers
            row = dict(shape=shape, case=case, arm=arm, alpha=alpha, n=n)
            kw = {}
            if arm.startswith('vchunk'):   # the slice alone would get one row block; the timed step dW is rounded once per row block
                mib = VCHUNK_BUDGETS.get(arm) if not self.dry else None
                kw['row_blocks'] = row['row_blocks'] = min(n, _plan(*x.shape, w.shape[0], x.element_size(), None if mib is None else mib * 2 ** 20)['R'])
            try:
                xg, wg = xs.detach().clone().requires_grad_(), w.detach().requires_grad_()
                l = fn(xg, wg, ts, **kw); l.backward(); self.sync()
                L, DX, DW = refs[alpha]
                row.update(err_loss=abs(float(l) - L) / abs(L), err_dx=rel(xg.grad, DX), err_dw=rel(wg.grad, DW),
                           finite=bool(torch.isfinite(l).all() and torch.isfinite(xg.grad).all() and torch.isfinite(wg.grad).all()))
                del xg, wg, l
            except Exception as e: row['error'] = f'{type(e).__name__}: {e}'[:2000]
            self.res['accuracy'].append(row)
        del refs; self.free(); self.save()

    def filter_share(self, shape, x, w, t, scale):
        from lsnb.kernel_fused import fused_linear_cross_entropy as fused
        for arm, alpha in (('fused_a0.1', ALPHA), ('fused_a0', 0.0)):
            if arm not in self.arms: continue
            row = dict(shape=shape, N=x.shape[0], scale=scale, arm=arm)
            try:
                xg, wg = x.detach().requires_grad_(), w.detach().requires_grad_()
                l, st = fused(xg, wg, t, label_smoothing=alpha, return_stats=True); l.backward()
                row.update(skipped=int(st['skipped_tiles']), tiles=st['tiles'], block=st.get('block'), share=int(st['skipped_tiles']) / max(st['tiles'], 1),
                           mean_top_prob=float(st['top_prob'].mean()), mean_entropy=float(st['entropy'].mean()))
                del xg, wg, l, st
            except Exception as e: row['error'] = f'{type(e).__name__}: {e}'[:2000]
            self.res['filter_share'].append(row)
        self.free(); self.save()

    def bitwise(self, shape, x, w, t):
        "Two runs of the same step: bit for bit equal? (deterministic mode and the default, atomics)."
        torch = self.torch
        from lsnb.kernel_fused import fused_linear_cross_entropy as fused
        for det in (True, False):
            row = dict(shape=shape, N=x.shape[0], deterministic=det)
            try:
                outs = []
                for _ in range(2):
                    xg, wg = x.detach().requires_grad_(), w.detach().requires_grad_()
                    l = fused(xg, wg, t, label_smoothing=ALPHA, deterministic=det); l.backward()
                    outs.append((l.detach().clone(), xg.grad, wg.grad)); del xg, wg, l
                row['equal'] = {k: bool(torch.equal(a, b)) for k, a, b in zip(('loss', 'dx', 'dw'), *outs)}
                del outs
            except Exception as e: row['error'] = f'{type(e).__name__}: {e}'[:2000]
            self.res['bitwise'].append(row)
        self.free(); self.save()

    def real_inputs(self, name, gguf):
        "A model's own inputs to its head (lsnb.kernel_bench.real_head_inputs); the model is freed before the arms run."
        torch = self.torch
        from lsnb.kernel_bench import real_head_inputs
        if self.dry:
            from lsnb.testing import tiny_tokenizer, tiny_model, alpaca_sample
            tok = tiny_tokenizer(chat=True); model = tiny_model(tok); recs = alpaca_sample(60); n = min(self.args.real_tokens, 64)
            src = dict(model='lsnb.testing.tiny_model', records_file='lsnb.testing.alpaca_sample(60)')
        else:
            from lsnb.models import load_model, file_sha256
            from lsnb.sft_data import read_records
            model, tok = load_model(gguf_file=gguf, dtype='bfloat16', device='cuda', cache_dir=self.args.real_cache)
            recs = read_records(self.args.real_records); n = self.args.real_tokens
            src = dict(gguf=Path(gguf).name, gguf_sha256=file_sha256(gguf), records_file=self.args.real_records.name, n_records=len(recs),
                       model_type=model.config.model_type)
        x, w, t, info = real_head_inputs(model, tok, recs, n_tokens=n, max_length=64 if self.dry else 512)
        w = w.detach().clone()   # the head's weight (tied: the embedding), kept; the rest of the model is freed
        del model; gc.collect(); self.free()
        x, w = x.to(torch.bfloat16), w.to(torch.bfloat16)
        z = x[:1024].float() @ w.float().T; p = torch.softmax(z, -1)
        info.update(src, mean_top_prob=float(p.max(-1).values.mean()), mean_target_prob=float(p.gather(1, t[:1024, None]).mean()),
                    logit_std=float(z.std()))
        del z, p
        self.res['real'][name] = info; self.save()
        return x, w, t

    # ---------------------------------------------------------------- the run
    def run(self):
        torch = self.torch
        for name, (N, d, V) in self.shapes.items(): self.res['floor'][name] = self.floor(N, d, V)
        self.save()
        first = ['vchunk_a0.1', 'fused_a0.1', 'fused_a0', 'chunked']
        # phase 1: the fused kernel and today's path at every shape, both scales; accuracy; filtering share
        for name, (N, d, V) in self.shapes.items():
            for scale in SCALES:
                if self.over(): self.skip(name, 'phase1', 'time budget spent', scale=scale); continue
                x, w, t = self.inputs(N, d, V, scale)
                for arm in first if scale == SCALES[0] else first[:3]: self.run_arm(name, arm, x, w, t, scale, 'main')
                if not self.over(): self.filter_share(name, x, w, t, scale)
                if scale == SCALES[0] and not self.over(): self.accuracy(name, x, w, t, 'normal')
                if scale == SCALES[0] and name == next(iter(self.shapes)) and not self.over(): self.bitwise(name, x, w, t)
                del x, w, t; self.free()
        # phase 1b: real inputs (a model's own hidden states and head), the arms that matter for the targets and the peers
        for name, gguf in self.args.real.items():
            if self.over(): self.skip(f'real:{name}', 'real', 'time budget spent'); continue
            try: x, w, t = self.real_inputs(name, gguf)
            except Exception as e:
                self.skip(f'real:{name}', 'real', f'{type(e).__name__}: {e}'[:1000]); continue
            shape = f'real:{name}'; N, d = x.shape; V = w.shape[0]
            self.res['floor'][shape] = self.floor(N, d, V)
            for arm in ['vchunk_a0.1', 'fused_a0.1', 'fused_a0', 'chunked', 'cce', 'liger', 'quack', 'eager']: self.run_arm(shape, arm, x, w, t, 0.0, 'real')
            if not self.over(): self.filter_share(shape, x, w, t, 0.0)
            if not self.over(): self.accuracy(shape, x, w, t, 'real')
            del x, w, t; self.free()
        # phase 2: the N sweep (fused, alpha = 0.1, scale 1)
        if self.sweep:
            N0, d, V = (DRY_SHAPES if self.dry else SHAPES)[self.sweep_shape]
            for N in self.sweep:
                if self.over(): self.skip(self.sweep_shape, 'fused_a0.1', 'time budget spent', N=N, phase='sweep'); continue
                try:
                    x, w, t = self.inputs(N, d, V, SCALES[0])
                    self.run_arm(self.sweep_shape, 'vchunk_a0.1', x, w, t, SCALES[0], 'sweep')
                    self.run_arm(self.sweep_shape, 'fused_a0.1', x, w, t, SCALES[0], 'sweep')
                    if N >= 16384 or self.dry: self.run_arm(self.sweep_shape, 'chunked', x, w, t, SCALES[0], 'sweep')
                    del x, w, t
                except Exception as e: self.skip(self.sweep_shape, 'fused_a0.1', f'{type(e).__name__}: {e}'[:500], N=N, phase='sweep')
                self.free()
        # phase 3: the peers, the no-filter variant and a second round of alpha 0 / 0.1 (the spread of the smoothing cost)
        for name, (N, d, V) in self.shapes.items():
            for scale in SCALES:
                if self.over(): self.skip(name, 'phase3', 'time budget spent', scale=scale); continue
                x, w, t = self.inputs(N, d, V, scale)
                arms = (['vchunk_a0', 'vchunk_a0.1', 'fused_a0', 'fused_a0.1', 'cce', 'liger', 'quack', 'torch_lce_a0', 'eager', *VCHUNK_BUDGETS, 'chunked_c1024',
                         'fused_a0.1_nofilter', 'fused_a0.1_det'] if scale == SCALES[0]
                        else ['cce', 'fused_a0.1_nofilter'])
                for arm in arms: self.run_arm(name, arm, x, w, t, scale, 'peers', round=2 if arm in first else 1)
                if scale == SCALES[0] and name == next(iter(self.shapes)) and not self.over():
                    xe, we, te = self.inputs(min(N, 1024), d, V, EXTREME_SCALE, seed=1)
                    self.accuracy(name, xe, we, te, 'extreme')
                    del xe, we, te
                del x, w, t; self.free()
        # phase 4: torch.compile (tens of seconds of compilation per shape: last)
        for name, (N, d, V) in self.shapes.items():
            if 'compile' not in self.arms: break
            if self.over(): self.skip(name, 'compile', 'time budget spent'); continue
            x, w, t = self.inputs(N, d, V, SCALES[0])
            self.run_arm(name, 'compile', x, w, t, SCALES[0], 'peers')
            del x, w, t; self.free()
        try:   # the launch configurations the fused kernels settled on (the first of lsnb.kernel_fused._TRY that fits)
            from lsnb import kernel_fused as kf
            self.res['meta']['fused_configs'] = [dict(kernel=k[0], elsize=k[1], flags=dict(k[3]),
                                                      config=(kf._TRY_INTERPRETER if k[2] else kf._TRY[k[1]])[i]) for k, i in kf._CHOSEN.items()]
        except Exception as e: self.res['meta']['fused_configs'] = repr(e)
        try:   # how the class-blocked path accumulated dX (cuBLAS into fp32, or a rounded product added) and its plans
            from lsnb import kernel_vchunk as kv
            self.res['meta']['vchunk_acc_path'] = dict(kv._ACC_PATH)
            self.res['meta']['vchunk_plans'] = {name: kv._plan(N, d, V, 2) for name, (N, d, V) in self.shapes.items()}
        except Exception as e: self.res['meta']['vchunk_acc_path'] = repr(e)
        self.res['meta']['finished'] = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
        self.save()
        return self.res


def self_check(res):
    "The dry run's checks: every CPU arm ran, its errors against float64 are small, the JSON has every section."
    probs = []
    for r in res['results']:
        if 'error' in r: probs.append(f"{r['arm']}: {r['error']}")
    for r in res['accuracy']:
        if 'error' in r: probs.append(f"accuracy {r['arm']}: {r['error']}")
        elif r['case'] == 'normal' and max(r['err_loss'], r['err_dx'], r['err_dw']) > 5e-2: probs.append(f'accuracy {r}')
    if not res['filter_share'] or any('error' in r for r in res['filter_share']): probs.append(f"filter_share {res['filter_share']}")
    if not res['bitwise'] or any('error' in r or (r['deterministic'] and not all(r['equal'].values())) for r in res['bitwise']):
        probs.append(f"bitwise {res['bitwise']}")
    for name in res['meta'].get('real', []):
        if name not in res['real'] or not any(r['shape'] == f'real:{name}' and 'ms' in r for r in res['results']):
            probs.append(f'real inputs {name}: nothing ran ({[r for r in res["skipped"] if r["shape"] == f"real:{name}"]})')
        if not any(r['shape'] == f'real:{name}' for r in res['accuracy']): probs.append(f'real inputs {name}: no accuracy rows')
    ran = {r['arm'] for r in res['results'] if 'ms' in r}
    for arm in ('fused_a0.1', 'fused_a0', 'fused_a0.1_nofilter', 'fused_a0.1_det', 'vchunk_a0.1', 'vchunk_a0', *VCHUNK_BUDGETS, 'chunked',
                'chunked_c1024', 'eager'):
        if arm in res['meta'].get('arms', ARMS) and arm not in ran: probs.append(f'{arm} did not run')
    return probs


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run: os.environ['TRITON_INTERPRET'] = '1'   # before triton is imported
    import torch
    if not args.dry_run and not torch.cuda.is_available():
        print('bench_kernel_v2.py: no CUDA GPU is visible (it times CUDA kernels); use --dry-run for the CPU self-check',
              file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    if args.dry_run: torch.set_num_threads(1); args.reps, args.warmup = min(args.reps, 2), 1   # the interpreter is slow
    b = Bench(args)
    b.res['meta']['arms'] = args.arms
    b.res['meta']['real'] = list(args.real)
    res = b.run()
    print(f"wrote {args.out} ({len(res['results'])} timings, {len(res['skipped'])} skipped) in {time.time() - b.t0:.0f} s")
    if args.dry_run:
        probs = self_check(res)
        if probs:
            print('dry run FAILED:\n  ' + '\n  '.join(probs), file=sys.stderr); return 1
        print('dry run OK')
    return 0


if __name__ == '__main__':
    sys.exit(main())

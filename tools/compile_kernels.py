"""Compile lsnb's Triton kernels (the fused tiles, the row kernels of the token- and class-blocked paths) for a GPU on a machine without one: Triton's front end, its NVIDIA back end and the
ptxas that its wheel ships, down to the cubin, for every kernel variant (constexpr flags x dtype) that lsnb launches.

    python tools/compile_kernels.py                 # the first configuration of each dtype, sm_90 (H100/H200), every variant
    python tools/compile_kernels.py --all-configs   # every configuration of lsnb.kernel_fused._TRY
    python tools/compile_kernels.py --quick --dtype bf16   # one bf16 variant per kernel (the test suite's check)
    PYTHONPATH=SITE python tools/compile_kernels.py # with another Triton (e.g. the GPU image's 3.6, unpacked into SITE)

A kernel that does not compile (a front-end error, a layout the back end refuses, ptxas) or needs more shared memory
than the target has is listed with the error, and the exit status is 1; `--json OUT` writes the table. What it cannot
tell: run time, register spills at launch, or correctness (the interpreter tests check that, tests/ and nbs/03c).
Runs with TRITON_INTERPRET unset (the interpreter replaces the compiler when it is set before triton is imported).
"""
from __future__ import annotations
import argparse, itertools, json, os, sys, time
from pathlib import Path

SHARED_LIMIT = {90: 232448, 80: 166912, 100: 232448}   # bytes of shared memory a block may use (opt-in maximum)


def variants(quick=False, all_configs=False, dtypes=('bf16', 'fp32')):
    "(label, jit function, {arg: type}, {constexpr: value}, num_warps, num_stages) for every variant lsnb launches."
    import lsnb.kernel_fused as KF
    i, f = 'i32', 'fp32'
    out = []
    for el, ptr in [(e, q) for e, q in ((2, '*bf16'), (4, '*fp32')) if q[1:] in dtypes]:
        prec = 'ieee' if el == 4 else None        # lsnb.kernel_fused._dot_prec
        cfgs = KF._TRY[el] if all_configs else KF._TRY[el][:1]
        for bn, bv, bd, nw, ns in cfgs:
            B = dict(BLOCK_N=bn, BLOCK_V=bv, BLOCK_D=bd, DOT_PREC=prec, UPCAST=False)
            tag = f'{ptr[1:]} {bn}x{bv}x{bd} w{nw} s{ns}'
            fwd = dict(X=ptr, W=ptr, T='*i64', Part='*fp32', N=i, V=i, D=i, stride_xn=i, stride_wv=i, v_per_split=i,
                       inv_temp=f, softcap=f)
            for sc in ((False,) if quick else (False, True)):
                out.append((f'fwd softcap={sc} {tag}', KF._fused_fwd_kernel, fwd, dict(B, HAS_SOFTCAP=sc), nw, ns))
            # the backward's flags, as _fused_backward sets them: smooth_in_tile only with softcap, and then no filter
            flagsets = [(sc, sm, fl) for sc, sm, fl in itertools.product((False, True), repeat=3) if not (sm and not sc) and not (sm and fl)]
            if quick: flagsets = [(False, False, True), (True, True, False)]
            common = dict(X=ptr, W=ptr, T='*i64', LSE='*fp32', G='*fp32', Skip='*i32', N=i, D=i, stride_xn=i, stride_wv=i,
                          inv_temp=f, softcap=f, c1=f, c0=f, z_loss=f, eps=f)
            dw = dict(common, GMAX='*fp32', DW='*fp32', v_lo=i, v_hi=i, stride_dwv=i)
            dx = dict(common, DXP='*fp32', V=i, v_per_split=i)
            for sc, sm, fl in flagsets:
                F_ = dict(B, HAS_SOFTCAP=sc, SMOOTH_IN_TILE=sm, FILTER=fl)
                lab = f'softcap={sc} smooth_in_tile={sm} filter={fl}'
                out.append((f'dw {lab} {tag}', KF._dw_kernel, dw, dict(F_, GROUP_N=8), nw, ns))
                if quick and (sc, sm, fl) != flagsets[0]: continue   # quick: the tile kernel with both flag sets, the others once
                out.append((f'det_dw {lab} {tag}', KF._det_dw_kernel, dw, dict(F_, COUNT=True), nw, ns))
                for cnt in ((True,) if quick else (False, True)):
                    out.append((f'dx {lab} count={cnt} {tag}', KF._dx_kernel, dx, dict(F_, COUNT=cnt), nw, ns))
    # the row kernels: lsnb.kernel's token-blocked one (its autotuner's configurations) and lsnb.kernel_vchunk's two
    import lsnb.kernel as K, lsnb.kernel_vchunk as KV
    for ptr in [q for q in ('*bf16', '*fp32') if q[1:] in dtypes]:
        row = dict(z_ptr=ptr, stride_z=i, tgt_ptr='*i64', lse_ptr='*fp32', loss_ptr='*fp32', scale_ptr='*fp32', stride_scale=i, V=i,
                   inv_temp=f, softcap=f, alpha=f, z_loss=f)
        cfgs = [(c.kwargs['BLOCK_V'], c.num_warps) for c in K._CONFIGS]
        for (bv, nw), sc, fwd, grad in itertools.product(cfgs[:1] if quick else cfgs, (False, True), (False, True), (False, True)):
            if not (fwd or grad) or (quick and (sc, fwd, grad) not in ((False, True, True), (True, False, True))): continue
            out.append((f'row softcap={sc} fwd={fwd} grad={grad} {ptr[1:]} {bv} w{nw}', K._lce_row_kernel, row,
                        dict(HAS_SOFTCAP=sc, DO_FWD=fwd, DO_GRAD=grad, BLOCK_V=bv), nw, 1))
        vf = dict(Z=ptr, stride_z=i, T='*i64', ST='*fp32', row0=i, N_all=i, C=i, v0=i, inv_temp=f, softcap=f)
        vb = dict(Z=ptr, stride_z=i, T='*i64', LSE='*fp32', G='*fp32', stride_g=i, NK='*fp32', row0=i, C=i, v0=i, V=i, inv_temp=f,
                  softcap=f, alpha=f, z_loss=f)
        for sc in ((False,) if quick else (False, True)):   # the GPU launch of kernel_vchunk._row_launch: BLOCK_V 4096, 8 warps (its widest)
            for first in ((False,) if quick else (False, True)):
                out.append((f'vchunk fwd softcap={sc} first={first} {ptr[1:]}', KV._vc_fwd_kernel, vf, dict(HAS_SOFTCAP=sc, FIRST=first, BLOCK_V=4096), 8, 1))
            out.append((f'vchunk bwd softcap={sc} {ptr[1:]}', KV._vc_bwd_kernel, vb, dict(HAS_SOFTCAP=sc, BLOCK_V=4096), 8, 1))
    return out


def compile_one(fn, types, consts, nw, ns, arch=90):
    "Compile one variant to a cubin for sm_`arch`: (seconds, shared memory in bytes)."
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    missing = [a for a in fn.arg_names if a not in consts and a not in types]
    if missing: raise KeyError(f'{fn.__name__}: no type given for argument(s) {missing} (the kernel changed: update variants())')
    sig = {a: 'constexpr' if a in consts else types[a] for a in fn.arg_names}
    t0 = time.time()
    k = triton.compile(ASTSource(fn, sig, constexprs=consts), target=GPUTarget('cuda', arch, 32),
                       options=dict(num_warps=nw, num_stages=ns))
    if 'cubin' not in k.asm: raise RuntimeError(f'{fn.__name__}: no cubin produced (stages: {list(k.asm)})')
    return time.time() - t0, int(k.metadata.shared)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', type=int, default=90, choices=sorted(SHARED_LIMIT), help='compute capability x10 (default: %(default)s, H100/H200)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--quick', action='store_true', help='one variant per kernel and dtype')
    g.add_argument('--all-configs', action='store_true', help="every tile configuration of lsnb.kernel_fused._TRY, not only the first")
    p.add_argument('--dtype', choices=('bf16', 'fp32', 'both'), default='both', help='input dtype of the variants (default: %(default)s)')
    p.add_argument('--json', type=Path, help='write the table to this JSON file')
    a = p.parse_args(argv)
    if os.environ.get('TRITON_INTERPRET', '0') not in ('', '0'):
        p.error('TRITON_INTERPRET is set: the interpreter replaces the compiler; unset it')
    import triton
    rows, bad = [], 0
    for label, fn, types, consts, nw, ns in variants(a.quick, a.all_configs, ('bf16', 'fp32') if a.dtype == 'both' else (a.dtype,)):
        try:
            dt, shared = compile_one(fn, types, consts, nw, ns, a.arch)
            ok = shared <= SHARED_LIMIT[a.arch]
            err = None if ok else f'needs {shared} B of shared memory, the target has {SHARED_LIMIT[a.arch]}'
        except Exception as e:   # the report names every failure; the exit status says there was one
            dt, shared, ok, err = None, None, False, f'{type(e).__name__}: {str(e)[:2000]}'
        bad += not ok
        rows.append(dict(kernel=label, ok=ok, seconds=dt, shared_bytes=shared, error=err))
        print(f"{'OK  ' if ok else 'FAIL'} {label}" + (f': {dt:.1f} s, shared {shared} B' if ok else f': {err}'), flush=True)
    print(f'{len(rows) - bad} of {len(rows)} kernel variants compile for sm_{a.arch} with Triton {triton.__version__}')
    if a.json:
        import platform, subprocess
        try: commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip() or None
        except OSError: commit = None
        meta = dict(triton=triton.__version__, arch=a.arch, commit=commit, machine=f'{platform.machine()} {platform.system()}, no GPU needed',
                    command='python tools/compile_kernels.py ' + ' '.join(argv if argv is not None else sys.argv[1:]))
        tmp = a.json.with_suffix('.tmp'); tmp.write_text(json.dumps(dict(meta, rows=rows), indent=1))
        os.replace(tmp, a.json)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

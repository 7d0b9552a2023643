"""Do two versions of lsnb compile the token-blocked row kernel (`lsnb.kernel._lce_row_kernel`, the kernel that trains
`lsnb sft` and the studies) to the same PTX? For a refactor made between the runs of one study: same floating-point
instructions, same results. No GPU needed (Triton's NVIDIA back end, sm_90).

    git worktree add ../old <commit>
    python tools/compare_kernel_ptx.py ../old .                  # every variant (autotuner configs x flags x dtype)
    python tools/compare_kernel_ptx.py --quick ../old .          # the first autotuner configuration only (the test's)
    PYTHONPATH=SITE python tools/compare_kernel_ptx.py ../old .  # with another Triton (the GPU image's, unpacked into SITE)

Each version is compiled in its own process. Per variant it prints `same`, `same instructions` (equal once the
`$L__tmp` labels are left out: they mark where an inlined helper's code starts and ends, for debug information),
`same up to predicates` (equal once, in addition, every use of a predicate register is replaced by the compare that
defines it and the compares themselves are dropped: a compare moved, what each instruction computes did not) or
`differs`. Comments, `.loc`/`.file` lines and
debug sections are always left out. Exit status 0 when no variant differs. Run with TRITON_INTERPRET unset.
"""
import hashlib, itertools, json, os, re, subprocess, sys

def _inline_predicates(ptx):
    "PTX with every use of a predicate register replaced by the compare that defines it, and the compares dropped: where they stand no longer matters."
    defs, keep = {}, []
    for l in ptx.splitlines():
        m = re.match(r'\s*(setp\.[\w.]+)\s+(%p\d+),\s*(.*);\s*$', l)
        if m and m.group(2) not in defs: defs[m.group(2)] = f'({m.group(1)} {m.group(3)})'; continue
        keep.append(l)
    if any(re.match(r'\s*setp\.', l) for l in keep): return ptx   # a predicate defined twice: leave it as it is
    return '\n'.join(re.sub(r'%p\d+', lambda m: defs.get(m.group(0), m.group(0)), l) for l in keep if not re.match(r'\s*\.reg\s+\.pred', l))

def ptx_hashes(root, quick=False):
    "{variant: (hash of the PTX, hash up to predicates)} of lsnb at `root` (run in this process)."
    sys.path.insert(0, root)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import lsnb.kernel as K
    i, f, out = 'i32', 'fp32', {}
    for ptr in ('*bf16', '*fp32'):
        row = dict(z_ptr=ptr, stride_z=i, tgt_ptr='*i64', lse_ptr='*fp32', loss_ptr='*fp32', scale_ptr='*fp32', stride_scale=i, V=i,
                   inv_temp=f, softcap=f, alpha=f, z_loss=f)
        for c, sc, fwd, grad in itertools.product(K._CONFIGS[:1] if quick else K._CONFIGS, (False, True), (False, True), (False, True)):
            if not (fwd or grad): continue
            consts = dict(HAS_SOFTCAP=sc, DO_FWD=fwd, DO_GRAD=grad, BLOCK_V=c.kwargs['BLOCK_V'])
            sig = {a: 'constexpr' if a in consts else row[a] for a in K._lce_row_kernel.arg_names}
            k = triton.compile(ASTSource(K._lce_row_kernel, sig, constexprs=consts), target=GPUTarget('cuda', 90, 32),
                               options=dict(num_warps=c.num_warps, num_stages=1))
            ptx = '\n'.join(l for l in k.asm['ptx'].split('.section\t.debug')[0].splitlines() if not re.match(r'\s*(\.loc|\.file|//)', l))
            code = '\n'.join(l for l in ptx.splitlines() if not re.match(r'\s*\$L__tmp\d+:', l))   # the labels that mark inlined calls for debug info
            canon = _inline_predicates(code)
            h = lambda s: hashlib.sha256(s.encode()).hexdigest()
            out[f'{ptr[1:]} BLOCK_V={c.kwargs["BLOCK_V"]} w{c.num_warps} softcap={sc} fwd={fwd} grad={grad}'] = (h(ptx), h(code), h(canon))
    return dict(triton=triton.__version__, hashes=out)

def main(argv=None):
    a = list(sys.argv[1:] if argv is None else argv)
    if len(a) == 3 and a[0] == '--one': print(json.dumps(ptx_hashes(a[1], a[2] == 'quick'))); return 0
    quick = '--quick' in a
    a = [x for x in a if x != '--quick']
    if len(a) != 2: sys.exit('usage: compare_kernel_ptx.py [--quick] OLD_ROOT NEW_ROOT (each a checkout holding lsnb/)')
    for r in a:
        if not os.path.isfile(os.path.join(r, 'lsnb', 'kernel.py')): sys.exit(f'compare_kernel_ptx.py: {r!r} holds no lsnb/kernel.py')
    if os.environ.get('TRITON_INTERPRET', '0') not in ('', '0'): sys.exit('compare_kernel_ptx.py: TRITON_INTERPRET is set: unset it')
    res = []
    for r in a:
        p = subprocess.run([sys.executable, __file__, '--one', os.path.abspath(r), 'quick' if quick else 'all'], capture_output=True, text=True)
        if p.returncode: sys.exit(f'compare_kernel_ptx.py: compiling {r!r} failed:\n{p.stderr[-3000:]}')
        res.append(json.loads(p.stdout))
    (old, new), bad = res, 0
    print(f'Triton {old["triton"]}, sm_90: {a[0]} against {a[1]}')
    for k in sorted(set(old['hashes']) | set(new['hashes'])):
        o, n = old['hashes'].get(k), new['hashes'].get(k)
        v = ('only in one' if o is None or n is None else 'same' if o[0] == n[0] else 'same instructions' if o[1] == n[1]
             else 'same up to predicates' if o[2] == n[2] else 'differs')
        bad += v in ('differs', 'only in one'); print(f'{v:22s} {k}')
    n = len(old['hashes'])
    print(f'{n - bad} of {n} variants: the same floating-point code' + ('' if not bad else f'; {bad} differ'))
    return 1 if bad else 0

if __name__ == '__main__': sys.exit(main())

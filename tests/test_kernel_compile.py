"""lsnb's Triton kernels (the fused tiles; the row kernels of the token- and class-blocked paths) compile for the GPU without one (issue 20): Triton's NVIDIA back end and the wheel's ptxas, to a cubin
for sm_90, one or two bf16 variants of each kernel (`tools/compile_kernels.py --quick --dtype bf16`; every variant of the fused kernels in both dtypes and every tile
configuration is the saved run nbs/results/kernel_compile_sm90.json, made before the row kernels were added). The
interpreter tests check what the kernels compute; this checks what the interpreter cannot: that the GPU compiler takes
them and that their shared memory fits an H100/H200."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fused_kernels_compile_for_sm90(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    env['TRITON_CACHE_DIR'] = str(tmp_path/'cache')          # a real compile each time, not a cached cubin
    out = tmp_path/'compile.json'
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'compile_kernels.py'), '--quick', '--dtype', 'bf16', '--json', str(out)],
                       env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    res = json.loads(out.read_text())
    kernels = {r['kernel'].split()[0] for r in res['rows']}
    assert kernels == {'fwd', 'dw', 'det_dw', 'dx', 'row', 'vchunk'} and len(res['rows']) == 9, [r['kernel'] for r in res['rows']]
    assert all(r['ok'] and 0 <= r['shared_bytes'] <= 232448 for r in res['rows'])
    assert all(r['shared_bytes'] > 0 for r in res['rows'] if r['kernel'].split()[0] in ('fwd', 'dw', 'det_dw', 'dx'))   # the tiles stage in shared memory


def test_compile_kernels_refuses_the_interpreter():
    env = dict(os.environ, TRITON_INTERPRET='1')
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'compile_kernels.py')], env=env, capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert p.returncode == 2 and 'TRITON_INTERPRET is set' in p.stderr


def test_compare_kernel_ptx_sees_a_change_in_the_arithmetic(tmp_path):
    "tools/compare_kernel_ptx.py: a copy of lsnb whose logit gradient is scaled differs in every gradient variant, and only there (exit 1)."
    import shutil
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    env['TRITON_CACHE_DIR'] = str(tmp_path/'cache')
    new = tmp_path/'new'; shutil.copytree(ROOT/'lsnb', new/'lsnb')
    src = (new/'lsnb'/'kernel.py').read_text()
    assert src.count('return dy * inv_temp') == 1
    (new/'lsnb'/'kernel.py').write_text(src.replace('return dy * inv_temp', 'return dy * (inv_temp * 0.5)'))
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'compare_kernel_ptx.py'), '--quick', str(ROOT), str(new)],
                       env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    verdict = {}
    for l in p.stdout.splitlines()[1:-1]:
        v = next(v for v in ('same up to predicates', 'same instructions', 'same', 'differs') if l.startswith(v))
        verdict[l[len(v):].strip()] = v
    assert p.returncode == 1 and len(verdict) == 12, p.stdout[-3000:] + p.stderr[-3000:]
    assert all((v == 'differs') == ('grad=True' in k) for k, v in verdict.items()), verdict
    assert all(v == 'same' for k, v in verdict.items() if 'grad=False' in k), verdict

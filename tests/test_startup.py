"""Start-up of `lsnb` (issue 19, point 7): the first `lsnb CMD --help` after an install, and a bad option, import
neither torch nor transformers; `lsnb --help` lists every subcommand with its one-line description. Behavioural
tests, in fresh processes with an empty help-snapshot folder (`LSNB_CACHE`), so that the real parser is built: what
a process imported is read from its `sys.modules`, not timed."""
import json, os, subprocess, sys
import pytest
from lsnb.cli import SUBCOMMANDS, Subcommand

HEAVY = ('torch', 'transformers', 'datasets', 'triton')
PROBE = r"""
import contextlib, io, json, sys
import lsnb.cli
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()) as err:
    try: rc = lsnb.cli.main(sys.argv[1:])
    except SystemExit as e: rc = e.code
print(json.dumps(dict(rc=rc, out=out.getvalue(), err=err.getvalue(), modules=sorted(sys.modules))))
"""

def _lsnb(tmp_path, *argv, columns=None):
    "Run `lsnb ARGV` through `lsnb.cli.main` in a fresh process with an empty snapshot folder: its rc, stdout, stderr, and imported modules."
    env = {**os.environ, 'LSNB_CACHE': str(tmp_path/'cache'), 'LSNB_DEBUG': '0'}
    if columns: env['COLUMNS'] = str(columns)
    p = subprocess.run([sys.executable, '-c', PROBE, *map(str, argv)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[-1])

def _heavy(r): return sorted(m for m in r['modules'] if m.split('.')[0] in HEAVY)

LIGHT_HELP = list(SUBCOMMANDS)   # every subcommand, kernel-bench included (lsnb.kernel_bench_args)

@pytest.mark.parametrize('cmd', LIGHT_HELP)
def test_first_help_imports_no_torch(tmp_path, cmd):
    r = _lsnb(tmp_path, cmd, '--help')
    assert r['rc'] == 0 and r['out'].startswith(f'usage: lsnb {cmd}') and '--' in r['out'].split('options:')[-1], r
    assert _heavy(r) == [], _heavy(r)
    sc = Subcommand(*SUBCOMMANDS[cmd])
    assert (sc.args or sc.module) in r['modules']                  # the real parser was built (no snapshot to answer from)...
    assert list((tmp_path/'cache'/'cli').glob(f'{cmd}.*.json'))    # ...and its snapshot saved

def test_main_help_lists_every_subcommand_on_one_line(tmp_path):
    r = _lsnb(tmp_path, '--help', columns=80)
    assert r['rc'] == 0 and _heavy(r) == [] and 'numpy' not in r['modules']
    lines = r['out'].splitlines()
    for name, sc in SUBCOMMANDS.items():
        row = [l for l in lines if l.split()[:1] == [name]]
        assert len(row) == 1, (name, r['out'])
        assert row[0].split(None, 1)[1] == sc.help, (name, row)     # the whole description, on the name's line
        assert len(row[0]) <= 80

@pytest.mark.parametrize('argv, msg', [
    (['eval', '--tasks', 'nosuch'], "unknown task 'nosuch'"),
    (['eval', '--n-boot', '1'], '--n-boot 0: no intervals'),
    (['sft', '--data', 'd.jsonl', '--out', 'o', '--lr', '-1'], '--lr must be in (0, inf), got -1'),
    (['sft', '--data', 'd.jsonl', '--out', 'o', '--objective', 'rcft'], '--objective rcft needs multiple-choice data'),
])
def test_bad_option_fails_before_torch(tmp_path, argv, msg):
    r = _lsnb(tmp_path, *argv)
    assert r['rc'] == 2 and r['err'].startswith(f'lsnb {argv[0]}: error: ') and msg in r['err'], r['err']
    assert _heavy(r) == [], _heavy(r)
    assert not (tmp_path/'o').exists()

def test_light_modules_import_no_torch(tmp_path):
    code = ('import sys, lsnb.calibration, lsnb.eval_config, lsnb.sft_config\n'
            'from lsnb.sft_config import CFTConfig, SFTConfig\n'
            'SFTConfig(data="task:arc_easy_200:test", out="o", objective="rcft", cft_reestimate="2"); CFTConfig()\n'
            'from lsnb.eval_config import EvalConfig, check_args\n'
            'EvalConfig(tasks="arc_easy_200", method="option_char")\n'
            f'print(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))')
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == '[]', p.stdout

"""Every test that did not run is said loudly at the very end of the run, after pytest's `N passed` line: a skipped
test gives a red `NOT RUN: N test(s) of <file> because <reason>` line (without `-rs` pytest shows a skip only as an
`s`), and the browser tests that failed because Chromium or npm is missing are summed up in one line with the fix."""
import os
from collections import defaultdict

if not os.environ.get('TRITON_INTERPRET'):   # no GPU: the Triton kernels run through the CPU interpreter (set before triton is imported)
    import torch
    if not torch.cuda.is_available(): os.environ['TRITON_INTERPRET'] = '1'


def _reason(rep):
    r = rep.longrepr
    text = r[2] if isinstance(r, tuple) and len(r) == 3 else str(getattr(rep, 'longreprtext', '') or r)
    return text.removeprefix('Skipped: ').strip()


def pytest_unconfigure(config):
    tr = config.pluginmanager.get_plugin('terminalreporter')
    if tr is None: return
    skipped = defaultdict(list)   # reason -> node ids
    for rep in tr.stats.get('skipped', []):
        if hasattr(rep, 'wasxfail'): continue
        skipped[_reason(rep)].append(rep.nodeid)
    no_browser = defaultdict(list)
    for rep in tr.stats.get('error', []) + tr.stats.get('failed', []):
        text = _reason(rep)
        if text.startswith('browser tests cannot run here'): no_browser[text].append(rep.nodeid)
    if not skipped and not no_browser: return
    n = sum(map(len, skipped.values())) + sum(map(len, no_browser.values()))
    tr.write_sep('=', f'{n} test(s) NOT RUN', red=True, bold=True)
    for reason, ids in no_browser.items():
        tr.write_line(f'FAILED, NOT RUN: {len(ids)} test(s) of {_files(ids)}: {reason}', red=True, bold=True)
    for reason, ids in skipped.items():
        tr.write_line(f'NOT RUN: {len(ids)} test(s) of {_files(ids)} because {reason}', red=True, bold=True)


def _files(ids): return ', '.join(sorted({i.split('::')[0] for i in ids}))

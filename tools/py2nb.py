#!/usr/bin/env python
"""Write a notebook from a percent-format script (a drafting aid; the notebook is the source of truth).

Cells start at lines `# %%` (code) or `# %% [markdown]` (markdown; each line's leading `# ` is removed).
    python tools/py2nb.py draft.py nbs/01_calibration.ipynb [--execute]
`--execute` runs the notebook with execnb (in its own folder; `#| eval: false` cells are skipped) and saves the outputs.
"""
import json, sys, re, os
from pathlib import Path

def parse(text):
    cells, kind, buf = [], None, []
    def flush():
        if kind is None: return
        src = '\n'.join(buf).strip('\n')
        if kind == 'markdown':
            src = '\n'.join(re.sub(r'^# ?', '', l) for l in src.split('\n'))
        if src.strip():
            c = {'cell_type': kind, 'metadata': {}, 'source': src}
            if kind == 'code': c.update(execution_count=None, outputs=[])
            cells.append(c)
    for line in text.split('\n'):
        m = re.match(r'^# %%\s*(\[markdown\])?\s*$', line)
        if m:
            flush(); kind = 'markdown' if m.group(1) else 'code'; buf = []
        elif kind is not None: buf.append(line)
    flush()
    return cells

def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    src, dest = Path(args[0]), Path(args[1])
    nb = {'cells': parse(src.read_text()), 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    for c in nb['cells']: c['source'] = c['source'].splitlines(keepends=True)
    dest.write_text(json.dumps(nb, indent=1) + '\n')
    if '--execute' in sys.argv:
        from execnb.nbio import read_nb, write_nb
        from execnb.shell import CaptureShell
        cwd = os.getcwd(); os.chdir(dest.parent.resolve())
        try:
            # like nbdev_test: cells marked `#| eval: false` (GPU/Hub reruns, side effects) are not run
            skip = lambda cell: any(l.strip().replace(' ', '') == '#|eval:false' for l in cell.source.splitlines())
            CaptureShell().execute(dest.name, dest.name, exc_stop=True, preproc=skip)
        finally: os.chdir(cwd)
    print(f'wrote {dest} ({len(nb["cells"])} cells)')

if __name__ == '__main__': main()

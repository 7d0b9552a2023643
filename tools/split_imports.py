#!/usr/bin/env python
"""Move top-level imports out of mixed code cells into their own cell just before (same `#|` flags).

nbdev's docs processing executes every cell that contains an import; a cell that mixes imports with test code
then runs out of context and fails (`nbdev_docs` stops on it). Export cells and cells that set environment
variables before imports (`os.environ`) are left alone.
    python tools/split_imports.py nbs/01_calibration.ipynb [...]
"""
import ast, json, sys
from pathlib import Path

def split_cell(src):
    lines = src.split('\n')
    flags = [l for l in lines if l.startswith('#|')]
    if any(f.replace(' ', '').startswith(('#|export', '#|exporti', '#|exports', '#|default_exp')) for f in flags): return None
    if 'os.environ' in src: return None
    try: tree = ast.parse(src)
    except SyntaxError: return None
    imps = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if not imps or len(imps) == len(tree.body): return None
    take = set()
    for n in imps:
        # only whole lines holding nothing but this import (no `import x; y = 1`)
        seg = lines[n.lineno - 1:n.end_lineno]
        others = [m for m in tree.body if m is not n and m.lineno <= n.end_lineno and m.end_lineno >= n.lineno]
        if others: return None
        take.update(range(n.lineno - 1, n.end_lineno))
    imp_src = '\n'.join(flags + [lines[i] for i in sorted(take)])
    rest = '\n'.join(l for i, l in enumerate(lines) if i not in take).strip('\n')
    return imp_src, rest

def process(path):
    nb = json.loads(Path(path).read_text())
    cells, n = [], 0
    for c in nb['cells']:
        if c['cell_type'] == 'code':
            r = split_cell(''.join(c['source']))
            if r:
                imp, rest = r; n += 1
                cells.append({'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [],
                              'source': imp.splitlines(keepends=True)})
                c = dict(c, source=rest.splitlines(keepends=True))
        cells.append(c)
    nb['cells'] = cells
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    print(f'{path}: split {n} cell(s)')

if __name__ == '__main__':
    for p in sys.argv[1:]: process(p)

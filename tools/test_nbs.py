#!/usr/bin/env python
"""Run the notebooks' tests as `nbdev_test` does, with a line per notebook and a closing count of what ran and what not.

    TRITON_INTERPRET=1 python tools/test_nbs.py --n_workers 2      # every notebook (CPU machine: Triton's interpreter)
    python tools/test_nbs.py --flags data                           # also the cells flagged `data` (read ../shared/data)
    python tools/test_nbs.py --path nbs/01_calibration.ipynb        # one notebook (or a folder, or a glob)

The notebooks, the flags and the execution are nbdev_test's (nbdev 2.4.14): the same file selection (`nbglob`, `.notest`
files), each notebook run by nbdev's own `test_nb` in a pool of worker processes, the cells flagged with one of
settings.ini's `tst_flags` (notest slow gpu data) left out unless `--flags` names the flag. What it adds:
- `start  <notebook>` when a worker begins a notebook and `[ k/N] PASS|FAIL  <notebook>  <seconds>` when it ends, so a
  run of ten minutes shows where it is (a failing notebook's traceback is printed, as by nbdev_test);
- a closing count, `N notebook(s): P passed, F failed, in m:ss`, then one `NOT RUN:` line per flag with the number of
  cells that were left out, their notebooks and how to run them (`--flags data` reads ../shared/data, which a fresh
  clone does not have; `slow` takes minutes; `gpu` needs a CUDA GPU; `notest` and `eval: false` cells are never run).
The exit status is 1 when a notebook failed, as nbdev_test's.
"""
import argparse, concurrent.futures as cf, multiprocessing as mp, os, signal, sys, time
from collections import defaultdict
from pathlib import Path

HOW = {'data': 'pass --flags data to run them (they read ../shared/data: the data folder beside the clone, as in CI)',
       'slow': 'pass --flags slow to run them (they take minutes)',
       'gpu': 'pass --flags gpu on a machine with a CUDA GPU',
       'notest': 'never run by tests (examples, or cells that need a person)',
       'eval: false': 'never run by tests (examples)'}


# names are printed relative to where the command was started (workers and the re-imported module inherit it)
_CWD = os.environ.setdefault('LSNB_TEST_NBS_CWD', os.getcwd())


def _rel(p):
    try: return os.path.relpath(p, _CWD)
    except ValueError: return str(p)


def flagged_cells(fn, skip_flags):
    "{flag: number of code cells} of notebook `fn` that nbdev_test leaves out: for a flag in `skip_flags`, or `eval: false`."
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    out = defaultdict(int)
    for c in nb.cells:
        if c.cell_type != 'code': continue
        d = getattr(c, 'directives_', {}) or {}
        hit = sorted(set(skip_flags) & set(d))
        if (d.get('eval:') or [''])[0].lower() == 'false': out['eval: false'] += 1   # nbdev never runs these
        elif hit: out[hit[0]] += 1
    return dict(out)


def _run(fn, skip_flags, force_flags, basepath):
    "Worker: nbdev's own test of one notebook; returns (passed, seconds, skipped by its front matter)."
    from nbdev.test import test_nb
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not the parent's handler, inherited through fork
    os.write(1, f'start  {_rel(fn)}\n'.encode())   # one write: the workers' lines never interleave
    t = time.time()
    ok, took = test_nb(fn, skip_flags=skip_flags, force_flags=force_flags, basepath=basepath)
    sys.stdout.flush(); sys.stderr.flush()
    return ok, time.time() - t, took == 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--path', default=None, help='a notebook, a folder or a glob (default: settings.ini nbs_path)')
    ap.add_argument('--flags', default='', help='space separated test flags whose cells are run too (e.g. "data slow")')
    ap.add_argument('--n_workers', type=int, default=None, help='worker processes (default as nbdev_test: 0 for one '
                    'notebook, else min(CPUs, 8)); 0 runs the notebooks one after another in this process')
    ap.add_argument('--list', action='store_true', help='only list the notebooks and the cells that would not run')
    ap.add_argument('--pause', type=float, default=0.01, help='seconds between starting two notebooks (as nbdev_test)')
    ap.add_argument('--first', default='', help='comma-separated notebook file names to start before the others (the '
                    'longest: with them last, one worker runs alone at the end)')
    a = ap.parse_args(argv)
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file
    from fastcore.basics import num_cpus
    cfg = get_config()
    skip_flags, force_flags = cfg.tst_flags.split(), a.flags.split()
    unknown = sorted(set(force_flags) - set(skip_flags))
    if unknown: ap.error(f'--flags: {" ".join(unknown)} is not one of settings.ini tst_flags ({cfg.tst_flags})')
    files = nbglob(a.path, as_path=True, symlinks=False, file_glob='*.ipynb', skip_file_re='^[_.]', skip_folder_re='^[_.]')
    files = [f.absolute() for f in sorted(files) if _keep_file(f, '.notest')]
    if not files: print('test_nbs: no notebook to test'); return 1
    first = [n for n in a.first.split(',') if n]
    if (bad := sorted(set(first) - {f.name for f in files})): ap.error(f'--first: no notebook named {", ".join(bad)} among those to test')
    files.sort(key=lambda f: first.index(f.name) if f.name in first else len(first))   # stable: the rest keep their order
    n_workers = a.n_workers if a.n_workers is not None else (0 if len(files) == 1 else min(num_cpus(), 8))
    left_out = {fl for fl in skip_flags if fl not in force_flags}
    not_run = defaultdict(dict)   # flag -> {notebook: cells}
    for f in files:
        for fl, n in flagged_cells(f, left_out).items(): not_run[fl][f] = n
    print(f'test_nbs: {len(files)} notebook(s), {n_workers or 1} at a time; running the cells flagged: '
          f'{" ".join(force_flags) or "(none)"}; leaving out the cells flagged: {" ".join(sorted(left_out)) or "(none)"}', flush=True)
    if a.list:
        for f in files: print(f'  {_rel(f)}')
        _not_run(not_run); return 0
    t0, results, k = time.time(), {}, 0
    os.chdir(cfg.nbs_path if cfg.nbs_path.exists() else os.getcwd())   # as nbdev_test
    kw = dict(skip_flags=skip_flags, force_flags=force_flags, basepath=cfg.config_path)

    def report(f, ok, took, skipped):
        nonlocal k
        k += 1; results[f] = ok
        status = 'PASS' if ok else 'FAIL'
        sys.stdout.flush()
        os.write(1, (f'[{k:2d}/{len(files)}] {status}  {_rel(f)}  ' + ('skipped (skip_exec in its front matter)' if skipped else f'{took:.0f} s') + '\n').encode())

    if n_workers == 0:
        for f in files: report(f, *_run(f, **kw))
    else:
        # the workers get `_run` from this file imported as a module: the IPython shell that runs a notebook in a
        # worker replaces its `__main__`, where a second notebook would look for `__main__._run`
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import test_nbs
        with cf.ProcessPoolExecutor(n_workers, mp_context=mp.get_context('fork')) as ex:
            def _stop(signum, frame):   # `timeout` or a kill: end the workers too, not only this process
                left = [_rel(f) for f in files if f not in results]
                print(f'\ntest_nbs: stopped by signal {signum}; not finished: {", ".join(left) or "none"}', flush=True)
                for p in list((getattr(ex, '_processes', None) or {}).values()): p.terminate()
                os._exit(128 + signum)
            signal.signal(signal.SIGTERM, _stop)
            futs = {}
            for f in files:
                futs[ex.submit(test_nbs._run, f, **kw)] = f
                time.sleep(a.pause)
            for fut in cf.as_completed(futs):
                f = futs[fut]
                try: report(f, *fut.result())
                except Exception as e:   # the worker itself died (out of memory, a crash in C code)
                    print(f'{_rel(f)}: the worker process failed: {type(e).__name__}: {e}', file=sys.stderr); report(f, False, 0, False)
    el = round(time.time() - t0)
    failed = [f for f in files if not results.get(f)]
    print(f'\n{len(files)} notebook(s): {len(files) - len(failed)} passed, {len(failed)} failed, in {int(el // 60)}:{int(el % 60):02d}'
          + (f' (failed: {", ".join(_rel(f) for f in failed)})' if failed else ''))
    _not_run(not_run)
    return 1 if failed else 0


def _not_run(not_run):
    "One `NOT RUN:` line per left-out flag: how many cells, in which notebooks, how to run them."
    for fl in sorted(not_run, key=lambda x: list(HOW).index(x) if x in HOW else len(HOW)):
        per = not_run[fl]
        names = ', '.join(f'{Path(f).name} ({n})' for f, n in per.items())
        print(f'NOT RUN: {sum(per.values())} cell(s) marked `#| {fl}` in {len(per)} notebook(s): {names}; '
              + HOW.get(fl, f'pass --flags {fl} to run them'))


if __name__ == '__main__': sys.exit(main())

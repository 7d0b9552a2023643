#!/usr/bin/env python
"""Build the docs site into `_docs/`, offline: nbdev's own processing, then smalldocs, with KaTeX served locally.

    python tools/build_docs.py               # build _docs/
    python tools/build_docs.py --n_workers 0 # process the notebooks in this process (no worker pool)

What `nbdev_docs` does through Quarto, without Quarto (which is not installable here):
1. nbdev's processing, called piece by piece because `nbdev_proc_nbs` first tries to download Quarto:
   `refresh_quarto_yml` (writes `nbs/nbdev.yml`), `_build_modidx` (the symbol index the doc links use),
   `nbdev_sidebar` (writes `nbs/sidebar.yml`) and `proc_nbs`, which writes the processed notebooks to `_proc/`
   (show_doc cells for every export, export cells hidden, `#|` directives applied, front matter as a raw cell).
   A notebook whose processing fails is reported and left out, the others are still built, and the exit status is 1.
   To render show_doc nbdev executes some cells; here (see `_patch_doc_exec`) cells flagged slow/gpu/notest are not
   executed, and a failing cell that mixes imports with other code (a test or example) is reported, not fatal.
2. Fixes for what smalldocs reads differently from Quarto, made on the copies in `_proc/` only: a notebook is
   renamed after its `output-file` (`00_core.ipynb` -> `core.ipynb`, so nbdev's doc links `core.html#f` work) and
   the sidebar follows; the output formats smalldocs does not make (commonmark, keep-md) are dropped from the copy
   of `_quarto.yml`; each display formula `$$...$$` is put on one line (CommonMark would read a formula line that
   starts with `+ ` as a list item, Pandoc does not).
3. `smalldocs render _proc`, then the site is moved to `_docs/`.
4. Post-processing of every page: the KaTeX files that smalldocs takes from a CDN are replaced by the copies
   installed from npm (`.ci/package.json`, `npm install --prefix .ci`) and vendored into `_docs/site_libs/katex/`;
   nbdev's absolute doc links (`{doc_host}{doc_baseurl}/x.html`) become relative, so the site works from any
   folder or server. A page that still loads a script, stylesheet, image or font from another host stops the build.

Every path here is git-ignored: `_proc/`, `_docs/`, `nbs/nbdev.yml`, `nbs/sidebar.yml`, `.ci/node_modules/`.
"""
import argparse, os, re, shutil, subprocess, sys, time
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
NPM_DIR = ROOT/'.ci'
KATEX_DIST = NPM_DIR/'node_modules'/'katex'/'dist'
# attributes through which a page makes the browser fetch something by itself (links in <a href> are only navigation)
FETCH_ATTR = re.compile(r'<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(src|href|data)\s*=\s*["\']?(https?:)?//', re.I)


def log(*a): print('[build_docs]', *a, flush=True)


def ensure_katex(install=True):
    "Return KaTeX's `dist/` folder from `.ci/node_modules`, running `npm install --prefix .ci` if it is missing."
    if not (KATEX_DIST/'katex.min.js').exists():
        if not install: raise FileNotFoundError(f'{KATEX_DIST} is missing: run `npm install --prefix .ci`')
        if not shutil.which('npm'): raise FileNotFoundError('npm is needed once, to install KaTeX into .ci/node_modules (Debian package `npm`)')
        log('npm install --prefix .ci (KaTeX)')
        subprocess.run(['npm', 'install', '--prefix', str(NPM_DIR), '--no-audit', '--no-fund', '--no-package-lock'],
                       check=True, cwd=NPM_DIR)
    for f in ('katex.min.js', 'katex.min.css', 'contrib/auto-render.min.js'):
        if not (KATEX_DIST/f).exists(): raise FileNotFoundError(f'KaTeX file missing: {KATEX_DIST/f}')
    return KATEX_DIST


_SKIPPED = []   # (kind, first line of the cell, error) for cells the doc processing skipped or let fail, in this process


def _first_line(cell):
    lines = [l for l in cell.source.splitlines() if l.strip() and not l.lstrip().startswith('#|')]
    return (lines[0][:70] + ('...' if len(lines[0]) > 70 else '')) if lines else '(empty)'


def _mixed(cell):
    "Whether a code cell mixes imports with other code and calls no show_doc (the cells nbdev warns about)."
    import ast
    if cell.cell_type != 'code' or 'show_doc' in cell.source: return False
    d = set(getattr(cell, 'directives_', {}) or {})
    if d & {'export', 'exports', 'exporti', 'exec_doc'}: return False
    try: body = ast.parse('\n'.join(l for l in cell.source.splitlines() if not l.lstrip().startswith(('%', '!')))).body
    except SyntaxError: return False
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(ast.Module(body=body, type_ignores=[]))) \
        and any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)


def _patch_doc_exec():
    """Two changes to the cells nbdev executes to render show_doc (`nbdev.processors.exec_show_docs`).

    nbdev executes the export cells, the show_doc cells and every cell with an import statement anywhere in it,
    with no other cell, and whatever the cell's flags; the first error stops the notebook. Here:
    - cells flagged with `tst_flags` (slow, gpu, notest) are not executed: a `#| gpu` cell
      `import subprocess; subprocess.run(...)` would run a GPU benchmark during a docs build (in nbdev only
      `#| eval: false` stops that);
    - a cell that mixes imports with other code and calls no show_doc (a test or an example; nbdev warns about
      these) may fail, typically on a name made by a cell nbdev did not run: the error is recorded and processing
      goes on, since show_doc never needs such a cell. `nbdev_docs` would stop there."""
    import nbdev.processors as P
    from nbdev.config import get_config
    if getattr(P.exec_show_docs.__call__, '_lsnb', False): return
    flags, orig_eval, orig_call = set(get_config().tst_flags.split()), P._do_eval, P.exec_show_docs.__call__
    def _do_eval(cell):
        if cell.cell_type == 'code' and flags & set(getattr(cell, 'directives_', {}) or {}): return None
        return orig_eval(cell)
    def __call__(self, cell):
        try: return orig_call(self, cell)
        except Exception as e:
            if not _mixed(cell) or getattr(self, 'k', None) is None: raise
            c = e.__cause__ or e
            _SKIPPED.append(('failed', _first_line(cell), f'{type(c).__name__}: {str(c).splitlines()[0] if str(c) else ""}'))
            self.k.exc = None
    __call__._lsnb = True
    P._do_eval, P.exec_show_docs.__call__ = _do_eval, __call__


def _proc_one(o):
    "Process one notebook as `nbdev.serve_drv.main` does; return (error or None, skipped cells) (worker-safe)."
    import nbdev.serve_drv, warnings
    warnings.filterwarnings('ignore', message='Found cells containing imports and other code')
    _patch_doc_exec()
    _SKIPPED.clear()
    cwd = os.getcwd()
    try:
        os.chdir(Path(o[0]).parent)   # as under nbdev_test: a cell's relative paths start at its notebook's folder
        nbdev.serve_drv.main(o); return None, list(_SKIPPED)
    except Exception as e:
        c = e.__cause__
        return str(e).splitlines()[0] + (f' -> {type(c).__name__}: {c}' if c is not None else ''), list(_SKIPPED)
    finally:
        os.environ.pop('IN_TEST', None)
        os.chdir(cwd)


def nbdev_process(n_workers=2):
    """nbdev's `_pre_docs` + `proc_nbs` without `_ensure_quarto`: yml files, symbol index, sidebar, and the processed
    notebooks in `_proc/`. Unlike `proc_nbs`, a notebook whose processing fails does not stop the others: it is left
    out of `_proc/` and returned in `failed` ({relative path: error})."""
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.serve import _proc_file
    from nbdev.doclinks import nbglob
    from fastcore.parallel import parallel
    import nbdev.doclinks
    from nbdev.config import get_config
    cfg = get_config()
    refresh_quarto_yml()
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    # what nbdev.serve.proc_nbs does (with force=True), but each notebook's failure is caught and reported
    path, cache = Path(cfg.nbs_path), cfg.config_path/'_proc'
    files = nbglob(path, func=Path, file_glob='', file_re='')
    for extra in ('_quarto.yml', '_brand.yml'):
        if (path/extra).exists(): files.append(path/extra)
    if (path/'_extensions').exists(): files.extend(nbglob(path/'_extensions', func=Path, file_glob='', file_re='', skip_file_re='^[.]'))
    if cache.exists(): shutil.rmtree(cache)
    cache.mkdir(parents=True)
    todo = files.map(_proc_file, mtime=None, cache=cache, path=path).filter()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_docs   # this file as a module: spawned workers unpickle `build_docs._proc_one`, not `__main__._proc_one`
    errs = parallel(build_docs._proc_one, todo, n_workers=n_workers, pause=0.01, **({} if n_workers == 0 else {'method': 'spawn'}))
    failed, skipped = {}, {}
    for (src, dst, _), (err, sk) in zip(todo, errs):
        if sk: skipped[src.relative_to(cfg.config_path).as_posix()] = sk
        if err is None: continue
        failed[dst.relative_to(cache).as_posix()] = f'{src.relative_to(cfg.config_path)}: {err}'
        if dst.exists(): dst.unlink()
    cache.touch()
    return cache, cfg, failed, skipped


def _front_matter(nb):
    "The YAML front matter nbdev's FrontmatterProc put in the first raw cell, as a dict ({} when none)."
    import yaml
    for c in nb.get('cells', []):
        if c.get('cell_type') != 'raw': continue
        s = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        m = re.match(r'\s*---\s*\n(.*?)\n---', s, re.S)
        if m: return yaml.safe_load(m.group(1)) or {}
    return {}


def rename_to_output_files(proc):
    "Rename each processed notebook after its `output-file` (smalldocs ignores that key); return {old: new} relative paths."
    import json
    moves = {}
    for nbp in sorted(proc.rglob('*.ipynb')):
        if any(p.startswith(('_', '.')) for p in nbp.relative_to(proc).parts): continue
        fm = _front_matter(json.loads(nbp.read_text(encoding='utf-8')))
        out = fm.get('output-file')
        if not out: continue
        new = nbp.with_name(Path(str(out)).stem + '.ipynb')
        if new != nbp and (new.exists() or new in moves.values()):
            raise SystemExit(f'build_docs: {nbp.relative_to(proc)} and {new.relative_to(proc)} would both become {out}')
        moves[nbp] = new
    for old, new in moves.items():
        nb = json.loads(old.read_text(encoding='utf-8'))
        for c in nb.get('cells', []):   # the key has done its job; smalldocs would only warn that it ignores it
            if c.get('cell_type') == 'raw':
                src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
                c['source'] = re.sub(r'(?m)^output-file:.*\n', '', src)
                break
        new.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
        if new != old: old.unlink()
    return {o.relative_to(proc).as_posix(): n.relative_to(proc).as_posix() for o, n in moves.items() if o != n}


_NB_LINK = re.compile(r'\]\(([^)#\s]+\.ipynb)(#[^)\s]*)?\)')


def fix_notebook_links(proc, moves):
    """Point markdown links between notebooks (`[x](../02_theory.ipynb)`, as they work on GitHub) at the renamed
    copies in `_proc/`; return how many links changed. A link to a notebook that does not exist is left for smalldocs
    to report."""
    import json, posixpath
    n = 0
    for nbp in sorted(proc.rglob('*.ipynb')):
        here = nbp.parent.relative_to(proc).as_posix()
        nb = json.loads(nbp.read_text(encoding='utf-8')); changed = False
        def _fix(m):
            nonlocal n
            target = posixpath.normpath(posixpath.join(here, m.group(1)))
            if target not in moves: return m.group(0)
            n += 1
            return f'](' + posixpath.relpath(moves[target], here or '.') + (m.group(2) or '') + ')'
        for c in nb.get('cells', []):
            if c.get('cell_type') != 'markdown': continue
            src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
            new = _NB_LINK.sub(_fix, src)
            if new != src: c['source'] = new; changed = True
        if changed: nbp.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    return n


_DISPLAY_MATH = re.compile(r'\$\$(.+?)\$\$', re.S)


def _one_line_math(md):
    "Join the lines of each `$$...$$` of a markdown text (outside code fences) into one line."
    parts = re.split(r'(?ms)(^ {0,3}(?:```|~~~).*?^ {0,3}(?:```|~~~)[^\n]*$)', md)   # odd items: code fences
    def _join(m):
        tex = m.group(1)
        if '\n' not in tex or re.search(r'(?<!\\)%', tex): return m.group(0)   # a TeX comment needs its line end
        return '$$' + ' '.join(l.strip() for l in tex.split('\n')) + '$$'
    return ''.join(p if i % 2 else _DISPLAY_MATH.sub(_join, p) for i, p in enumerate(parts))


def fix_markdown_math(proc):
    """Put each display formula `$$...$$` of the markdown cells on one line; return how many cells changed.

    Pandoc reads a formula's lines as one formula; a CommonMark reader (smalldocs) first splits the paragraph into
    blocks, so a formula line that starts with `+ `, `- `, `* `, `1. `, `> ` or `#` becomes a list, a quote or a
    heading, and the rest of the formula is left as raw TeX. On one line it cannot be taken apart."""
    import json
    n = 0
    for nbp in sorted(proc.rglob('*.ipynb')):
        nb = json.loads(nbp.read_text(encoding='utf-8')); changed = False
        for c in nb.get('cells', []):
            if c.get('cell_type') != 'markdown': continue
            src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
            new = _one_line_math(src)
            if new != src: c['source'] = new; changed = True; n += 1
        if changed: nbp.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    return n


def fix_proc_config(proc, moves):
    "Point `sidebar.yml` at the renamed notebooks and drop the formats smalldocs does not make from `_quarto.yml`."
    import yaml
    sb = proc/'sidebar.yml'
    if sb.exists():
        def _fix(x):   # renamed notebooks get their new name; those mapped to None (failed) leave the sidebar
            if isinstance(x, str): return moves.get(x, x)
            if isinstance(x, list): return [y for y in (_fix(o) for o in x) if y is not None]
            if isinstance(x, dict): return {k: _fix(v) for k, v in x.items()}
            return x
        sb.write_text(yaml.safe_dump(_fix(yaml.safe_load(sb.read_text())), sort_keys=False))
    qy = proc/'_quarto.yml'
    q = yaml.safe_load(qy.read_text())
    fmt = q.get('format') or {}
    fmt.pop('commonmark', None)
    if isinstance(fmt.get('html'), dict): fmt['html'].pop('keep-md', None)
    qy.write_text(yaml.safe_dump(q, sort_keys=False))


def render(proc, quiet=True):
    "Render `_proc/` with smalldocs; return the output folder and the warnings."
    from smalldocs.site import build
    site = build(proc, quiet=quiet)
    return Path(site.out), list(site.warnings)


GOOGLE_FONTS = re.compile(r'@import\s+url\(\s*["\']?https?://fonts\.googleapis\.com/css2?\?([^)"\']*)["\']?\s*\)\s*;?')


def vendor_theme_fonts(docs):
    "Replace a Bootswatch theme's Google Fonts `@import` by the same font from npm's @fontsource (or the fallback fonts)."
    fonts = docs/'site_libs'/'fonts'
    for css in sorted((docs/'site_libs'/'themes').rglob('*.css')):
        s = css.read_text(encoding='utf-8')
        def _local(m):
            imports = []
            for fam in re.findall(r'family=([^&]+)', m.group(1)):
                name, _, spec = fam.partition(':')
                name = name.replace('+', ' ')
                weights = re.findall(r'\d{3}', spec.split('@', 1)[-1]) or ['400']
                slug = name.lower().replace(' ', '-')
                pkg = NPM_DIR/'node_modules'/'@fontsource'/slug
                if not pkg.is_dir():
                    log(f'warning: font {name!r} of {css.name} is not in .ci/node_modules/@fontsource: the fallback fonts are used')
                    continue
                parts = []
                for w in sorted(set(weights) | {'400', '700'}):
                    for f in (pkg/f'{w}.css', pkg/f'{w}-italic.css'):
                        if f.exists(): parts.append(f.read_text(encoding='utf-8'))
                text = '\n'.join(parts)
                (fonts/slug/'files').mkdir(parents=True, exist_ok=True)
                for fn in sorted(set(re.findall(r'url\(\./files/([^)]+)\)', text))): shutil.copy2(pkg/'files'/fn, fonts/slug/'files'/fn)
                if (pkg/'LICENSE').exists(): shutil.copy2(pkg/'LICENSE', fonts/slug/'LICENSE')
                (fonts/f'{slug}.css').write_text(text.replace('url(./files/', f'url({slug}/files/'), encoding='utf-8')
                imports.append(f'@import url({os.path.relpath(fonts/(slug + ".css"), css.parent)});')
            return ''.join(imports)
        new = GOOGLE_FONTS.sub(_local, s)
        if new != s: css.write_text(new, encoding='utf-8')


def postprocess(docs, cfg, katex_dist):
    "Vendor KaTeX, make nbdev's absolute doc links relative, and refuse pages that fetch from another host."
    import smalldocs.layout
    libs = docs/'site_libs'/'katex'
    if libs.exists(): shutil.rmtree(libs)
    libs.mkdir(parents=True)
    for f in ('katex.min.js', 'katex.min.css'): shutil.copy2(katex_dist/f, libs/f)
    (libs/'contrib').mkdir()
    shutil.copy2(katex_dist/'contrib'/'auto-render.min.js', libs/'contrib'/'auto-render.min.js')
    shutil.copytree(katex_dist/'fonts', libs/'fonts')
    # a display formula wider than the text column scrolls instead of being cut off at the column's edge (and is the
    # containing block of KaTeX's hidden MathML, which would otherwise widen the page); an inline formula may break
    # after a relation or an operator like the text around it, instead of running out of the column
    (libs/'katex-site.css').write_text('.katex-display{overflow-x:auto;overflow-y:hidden;padding:.25em 0;position:relative}\n',
                                       encoding='utf-8')
    lic = katex_dist.parent/'LICENSE'
    if lic.exists(): shutil.copy2(lic, libs/'LICENSE')
    vendor_theme_fonts(docs)
    cdn = smalldocs.layout.KATEX.rstrip('/')
    site_url = (str(cfg.get('doc_host', '')).rstrip('/') + '/' + str(cfg.get('doc_baseurl', '')).strip('/')).rstrip('/') + '/'
    pages = [p for p in sorted(docs.rglob('*.html')) if p.relative_to(docs).parts[0] != 'site_libs']
    ids = {p.relative_to(docs).as_posix(): set(re.findall(r'\bid=["\']([^"\']+)["\']', p.read_text(encoding='utf-8'))) for p in pages}
    problems, n, unlinked = [], 0, []
    for page in pages:
        rel = page.relative_to(docs)
        up = '../'*(len(rel.parts) - 1)
        s = page.read_text(encoding='utf-8')
        s = s.replace(cdn, up + 'site_libs/katex')
        s = s.replace(f'href="{up}site_libs/katex/katex.min.css">',
                      f'href="{up}site_libs/katex/katex.min.css"><link rel="stylesheet" href="{up}site_libs/katex/katex-site.css">', 1)
        if not re.search(r'<link[^>]+rel=["\']?(shortcut )?icon', s):
            s = s.replace('</head>', '<link rel="icon" href="data:,"></head>', 1)   # no /favicon.ico request (a 404)
        if site_url.startswith(('http://', 'https://')):
            # nbdev's doc links are absolute URLs of the published site; the same pages are here
            s = re.sub(r'(href=["\'])' + re.escape(site_url), lambda m: m.group(1) + (up or './'), s)
            # nbdev links every backticked name of the symbol index, private helpers (`_chunked`) too, but show_doc
            # documents only public ones: a link to an anchor its page lacks is left as plain code
            def _unlink(m):
                target = (PurePosixPath(rel.parent.as_posix())/m.group(1)).as_posix()
                target = os.path.normpath(target)
                if target in ids and m.group(2) not in ids[target]:
                    unlinked.append(f'{rel}: {m.group(1)}#{m.group(2)}'); return m.group(3)
                return m.group(0)
            s = re.sub(r'<a href="(?:\./)?((?:\.\./)*[^"#:]+\.html)#([^"]+)">(<code>[^<]*</code>)</a>', _unlink, s)
        for m in FETCH_ATTR.finditer(s): problems.append(f'{rel}: {m.group(0)[:120]}')
        page.write_text(s, encoding='utf-8'); n += 1
    if unlinked: log(f'{len(unlinked)} doc link(s) to symbols their page does not document, left as plain code: '
                     + ', '.join(sorted(set(u.split(': ', 1)[1] for u in unlinked))))
    if problems:
        raise SystemExit('build_docs: pages that would fetch from another host (vendor these files):\n  ' + '\n  '.join(problems))
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n_workers', type=int, default=2, help='worker processes for nbdev processing (0: in this process)')
    ap.add_argument('--no-npm', action='store_true', help='fail instead of running npm when KaTeX is missing')
    a = ap.parse_args(argv)
    os.chdir(ROOT)
    t0 = time.time()
    katex_dist = ensure_katex(install=not a.no_npm)
    proc, cfg, failed, skipped = nbdev_process(a.n_workers)
    for nb, sk in skipped.items():
        for kind, line, err in sk:
            log(f'note: {nb}: a cell that mixes imports with other code failed during doc processing, ignored here '
                f'(nbdev_docs would stop; keep imports in import-only cells): "{line}" -> {err}')
    for k, v in failed.items(): log(f'FAILED to process {v}')
    if failed: log('  the site is built without these notebooks')
    t1 = time.time()
    log(f'nbdev processing -> {proc.relative_to(ROOT)} ({t1-t0:.1f} s)')
    moves = rename_to_output_files(proc)
    moves.update({k: None for k in failed})
    fix_proc_config(proc, moves)
    fix_markdown_math(proc)
    fix_notebook_links(proc, {k: v for k, v in moves.items() if v})
    out, warnings = render(proc)
    for w in warnings: log('smalldocs warning:', w)
    docs = ROOT/cfg.doc_path.name
    if docs.exists(): shutil.rmtree(docs)
    shutil.move(str(out), str(docs))
    n = postprocess(docs, cfg, katex_dist)
    log(f'wrote {n} page(s) to {docs.relative_to(ROOT)}/ ({time.time()-t0:.1f} s)')
    if failed: log(f'{len(failed)} notebook(s) left out: ' + ', '.join(sorted(failed)))
    return 1 if failed else 0


if __name__ == '__main__': sys.exit(main())

"""The docs site in a real browser: every page of `_docs/` opened in headless Chromium from a local server.

The site is built by `tools/build_docs.py` (offline: nbdev processing, smalldocs, local KaTeX) unless
LSNB_DOCS_PREBUILT=1 says `_docs/` is fresh (`.ci/run` builds it as a stage of its own just before).
Screenshots (front page, the API page with the most entries, a page with maths, a page with plots) go to `.ci/artifacts/`.

These tests need Chromium, and npm once (it installs KaTeX into `.ci/node_modules`). Without them every test here
FAILS with a one-line instruction (`sudo apt-get install chromium npm`); `LSNB_SKIP_BROWSER=1` makes them skip
instead, and `tests/conftest.py` then ends the run with a `NOT RUN: ...` line saying which tests did not run and why.
Under CI=true they always fail.
"""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import check_site  # noqa: E402  (tools/check_site.py: the CDP client, the local server and the page checks)

DOCS = ROOT/'_docs'
SHOTS = ROOT/'.ci'/'artifacts'
INSTALL = 'sudo apt-get install chromium npm'   # Debian/Ubuntu; any Chrome or Chromium binary works via LSNB_CHROMIUM
SKIP_ENV = 'LSNB_SKIP_BROWSER'


def browser_missing(build=True):
    "Why the browser tests cannot run on this machine (None when they can): no Chromium, or no npm for the docs build."
    if not check_site.find_chromium(): return 'Chromium is not installed'
    if build and os.environ.get('LSNB_DOCS_PREBUILT') != '1' and not shutil.which('npm') \
            and not (ROOT/'.ci'/'node_modules'/'katex'/'dist'/'katex.min.js').exists():
        return 'npm is not installed (the docs build installs KaTeX with it, once)'
    return None


def _need_browser(build=True):
    "Fail (or, with LSNB_SKIP_BROWSER=1 outside CI, skip) with one line when the browser tests cannot run here."
    why = browser_missing(build)
    if why is None: return
    if os.environ.get(SKIP_ENV) == '1' and not os.environ.get('CI'):
        pytest.skip(f'{why}; install with `{INSTALL}` (or set LSNB_CHROMIUM to a Chrome/Chromium binary)')
    pytest.fail(f'browser tests cannot run here: {why}. Install with `{INSTALL}` (or set LSNB_CHROMIUM to a '
                f'Chrome/Chromium binary), or run `{SKIP_ENV}=1 pytest tests` to skip them (reported as NOT RUN)', pytrace=False)


@pytest.fixture(scope='module')
def site(request):
    "The built site: its folder, every page's visit record, the local origin, the screenshots."
    _need_browser()
    tr = request.config.pluginmanager.get_plugin('terminalreporter')
    say = (lambda m: tr.write_line(f'[test_docs] {m}')) if tr else (lambda m: None)
    if os.environ.get('LSNB_DOCS_PREBUILT') == '1':
        if not (DOCS/'index.html').exists(): pytest.fail('LSNB_DOCS_PREBUILT=1 but _docs/index.html is missing: the docs build failed')
    else:
        say('building the docs site: python tools/build_docs.py (a few minutes; LSNB_DOCS_PREBUILT=1 reuses _docs/)')
        r = subprocess.run([sys.executable, str(ROOT/'tools'/'build_docs.py')], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, f'docs build failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    say(f'opening every page of {DOCS.name}/ in headless Chromium ({check_site.find_chromium()})')
    visits, hits, origin, shots = check_site.check_site(DOCS, SHOTS)
    return dict(visits=visits, hits=hits, origin=origin, shots=shots,
                problems=check_site.problems(DOCS, visits, origin))


def _fmt(items, n=40): return '\n'.join(items[:n]) + (f'\n... and {len(items)-n} more' if len(items) > n else '')


def test_every_notebook_has_a_page(site):
    "Each processed notebook in `_proc/` became an HTML page (none silently dropped by the renderer)."
    proc = ROOT/'_proc'
    nbs = {p.relative_to(proc).with_suffix('.html').as_posix() for p in proc.rglob('*.ipynb')
           if not any(s.startswith(('_', '.')) for s in p.relative_to(proc).parts)}
    pages = set(check_site.site_pages(DOCS))
    assert nbs, 'no processed notebooks in _proc/'
    assert 'index.html' in pages
    assert nbs <= pages, f'notebooks without a page: {sorted(nbs - pages)}'
    assert {v['url'][len(site["origin"]) + 1:] for v in site['visits']} == pages


def test_pages_load(site):
    assert not site['problems']['load'], _fmt(site['problems']['load'])


def test_no_console_errors(site):
    assert not site['problems']['console'], _fmt(site['problems']['console'])


def test_math_rendered(site):
    "No raw TeX in the text, no KaTeX error, every `.math` element rendered; and the site has maths at all."
    assert not site['problems']['math'], _fmt(site['problems']['math'])
    with_tex = [v['url'] for v in site['visits'] if v.get('nMath')]
    assert all(v.get('nKatex', 0) >= v.get('nMath', 0) for v in site['visits'])
    if not with_tex: pytest.skip('no page has maths yet')


def test_images_load(site):
    assert not site['problems']['images'], _fmt(site['problems']['images'])


def test_internal_links(site):
    "Every same-origin link resolves to a file, and its #fragment to an element of the target page."
    assert not site['problems']['links'], _fmt(site['problems']['links'])
    n = sum(1 for v in site['visits'] for h in v.get('links', []) if h.startswith(site['origin']))
    assert n > len(site['visits']), 'too few internal links: is the sidebar there?'


def test_no_remote_requests(site):
    "The browser asked no host but 127.0.0.1 for anything, and no file of the site points a fetch at another host."
    remote = site['problems']['remote'] + [f'(in files) {s}' for s in check_site.static_remote_refs(DOCS)]
    assert not remote, _fmt(remote)
    assert site['hits'], 'the local server saw no request'
    assert all(code < 400 for path, code in site['hits'] if path != '/favicon.ico'), \
        [h for h in site['hits'] if h[1] >= 400]


def test_nothing_clipped(site):
    """No content a reader cannot see or reach, at window widths 1280, 1024 and 800: no page wider than the window, no
    element running out of the text column outside a scroll box (a long inline formula), no box with overflow hidden
    whose content is larger (a code line or a display formula cut off). Wide code, tables and formulas scroll."""
    assert not site['problems']['clip'], _fmt(site['problems']['clip'])


def test_screenshots(site):
    "Screenshots of the front page and an API page exist and are not blank (a person looks at them)."
    import matplotlib.image as mpimg
    assert {'front', 'api'} <= set(site['shots']), site['shots']
    for p in site['shots'].values():
        img = mpimg.imread(p)
        assert img.shape[0] >= 500 and img.shape[1] >= 1000, (p, img.shape)
        assert img[..., :3].std() > 0.05, f'{p} looks blank'


# ---- the checker itself: a small site with one fault of each kind must be caught, a clean page must pass

LONG = ' '.join(f'word{i}' for i in range(120))   # a line far wider than the 400 px text column
BAD = """<!doctype html><html><head><title>bad</title><link rel="icon" href="data:,">
<script src="http://remote.invalid/x.js"></script></head><body><main style="width:400px">
<p>Raw maths $$x^2$$ and \\frac{a}{b} left as text.</p>
<pre style="overflow:hidden">cut: LONG</pre>
<p style="white-space:nowrap">spills: LONG</p>
<p><span class="math inline">\\(x\\)</span> was never rendered.</p>
<img src="missing.png" alt="gone">
<a href="nope.html">a missing page</a> <a href="ok.html#nowhere">a missing anchor</a> <a href="ok.html#here">fine</a>
<script>console.error('boom')</script></main></body></html>""".replace('LONG', LONG)
OK = """<!doctype html><html><head><title>ok</title><link rel="icon" href="data:,"></head><body><main style="width:400px">
<h1 id="here">fine</h1><p>Prices like 5 dollars, <code>$$ \\frac{a}{b}</code> in code.</p><a href="bad.html">back</a>
<pre style="overflow-x:auto">scrolls: LONG</pre><p>wraps: LONG</p></main></body></html>""".replace('LONG', LONG)


def test_checker_catches_faults(tmp_path):
    _need_browser(build=False)
    (tmp_path/'bad.html').write_text(BAD); (tmp_path/'ok.html').write_text(OK)
    visits, hits, origin, _ = check_site.check_site(tmp_path, shots=None)
    probs = check_site.problems(tmp_path, visits, origin)
    assert any(s.startswith('/bad.html') and 'remote.invalid' in s for s in probs['remote']), probs['remote']
    assert any('boom' in s for s in probs['console']), probs['console']
    assert any('raw TeX' in s and '$$' in s for s in probs['math']), probs['math']
    assert any('frac' in s for s in probs['math']), probs['math']
    assert any('not rendered' in s for s in probs['math']), probs['math']
    assert any('missing.png' in s for s in probs['images']), probs['images']
    assert any('nope.html' in s and 'no such file' in s for s in probs['links']), probs['links']
    assert any('nowhere' in s for s in probs['links']), probs['links']
    assert not any('#here' in s for s in probs['links']), probs['links']
    clip = [s for s in probs['clip'] if s.startswith('/bad.html')]
    assert any('cut off' in s and 'overflow-x hidden' in s and 'cut: word0' in s for s in clip), clip
    assert any('out of the text column' in s and 'spills: word0' in s for s in clip), clip
    assert any('the page is' in s and 'wide in a' in s for s in clip), clip
    assert not any(s.startswith('/ok.html') for v in probs.values() for s in v), probs
    assert check_site.static_remote_refs(tmp_path) == ['bad.html: http://remote.invalid/x.js']

#!/usr/bin/env python
"""Open every page of a built site in headless Chromium and report what a reader would see broken.

    python tools/check_site.py [_docs] [--shots .ci/artifacts]   # prints a report, exit 1 on any problem

The site is served from 127.0.0.1 by a local HTTP server; Chromium (Debian's `chromium`) is driven through the
Chrome DevTools Protocol over a pipe (`--remote-debugging-pipe`: JSON messages ending in a NUL byte on file
descriptors 3 and 4), so no websocket library and no driver are needed. For each page it records:
  - load:    the navigation error, the HTTP status of the document, whether the load event came;
  - console: console.error/assert calls, uncaught exceptions, and the browser's own error log entries
             (a failed resource load among them);
  - math:    raw TeX left in the text outside code (`$$`, `\\(`, `\\[`, `\\frac`, `$x$`, ...), KaTeX error
             boxes, and `.math` elements that KaTeX did not render;
  - images:  <img> elements that did not load or decode;
  - links:   every same-origin <a href>; `check_links` then checks that the file exists and that its #fragment
             names an element of the target page;
  - remote:  every request whose host is not 127.0.0.1/localhost (DNS for any other name is also mapped to
             nothing, so such a request fails here instead of leaving the machine);
  - clip:    content a reader cannot see or reach, in windows 1280, 1024 and 800 px wide: a page wider than the window, an
             element running out of the text column with no scroll box around it (a long inline formula), a box
             with overflow hidden whose content is larger than it (a code line or formula cut off).
"""
import base64, fcntl, functools, http.server, json, os, queue, re, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path
from urllib.parse import urlsplit, unquote, urldefrag

LOCAL_HOSTS = {'127.0.0.1', 'localhost', '[::1]', '::1'}
CHROMIUM_FLAGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync', '--disable-extensions', '--disable-default-apps',
    '--no-default-browser-check', '--disable-dev-shm-usage', '--mute-audio',
    '--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication',
    # any name but the loopback ones resolves to nothing: a page's remote request fails here and is reported
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost',
    '--window-size=1280,1000', '--remote-debugging-pipe',
]


def find_chromium():
    """The Chromium binary: $LSNB_CHROMIUM (a path or a name on PATH; None when it names no executable), else the first of
    chromium, chromium-browser, google-chrome on PATH (None if none)."""
    env = os.environ.get('LSNB_CHROMIUM')
    if env: return shutil.which(env)
    for n in ('chromium', 'chromium-browser', 'google-chrome'):
        p = shutil.which(n)
        if p: return p
    return None


class CDPError(RuntimeError): pass


class Browser:
    "Headless Chromium driven through the DevTools protocol over a pipe."
    def __init__(self, binary=None, timeout=30):
        self.binary = binary or find_chromium()
        if not self.binary: raise FileNotFoundError('Chromium not found: apt-get install chromium (or set LSNB_CHROMIUM)')
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix='lsnb-chromium-')
        cmd_r, self._cmd_w = os.pipe()     # we write commands, Chromium reads them on fd 3
        self._resp_r, resp_w = os.pipe()   # Chromium writes on fd 4, we read
        hi_r, hi_w = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 100), fcntl.fcntl(resp_w, fcntl.F_DUPFD, 100)
        os.close(cmd_r); os.close(resp_w)
        def _child_fds(): os.dup2(hi_r, 3); os.dup2(hi_w, 4)
        self.log = open(Path(self.profile)/'chromium.log', 'wb')
        self.proc = subprocess.Popen([self.binary, *CHROMIUM_FLAGS, f'--user-data-dir={self.profile}', 'about:blank'],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     pass_fds=(3, 4), preexec_fn=_child_fds)
        os.close(hi_r); os.close(hi_w)
        self._next, self._lock = 0, threading.Lock()
        self._replies, self._cv = {}, threading.Condition()
        self.events = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True); self._reader.start()
        self.session = None

    def _read(self):
        buf = b''
        with os.fdopen(self._resp_r, 'rb', buffering=0) as f:
            while True:
                chunk = f.read(1 << 16)
                if not chunk: break
                buf += chunk
                while b'\0' in buf:
                    raw, buf = buf.split(b'\0', 1)
                    msg = json.loads(raw)
                    if 'id' in msg:
                        with self._cv: self._replies[msg['id']] = msg; self._cv.notify_all()
                    else: self.events.put(msg)
        with self._cv: self._replies[-1] = None; self._cv.notify_all()   # the browser closed the pipe

    def send(self, method, params=None, session=True, timeout=None):
        "Send one command and wait for its reply; raise CDPError on an error reply."
        with self._lock:
            self._next += 1; i = self._next
            msg = {'id': i, 'method': method, 'params': params or {}}
            if session and self.session: msg['sessionId'] = self.session
            os.write(self._cmd_w, json.dumps(msg).encode() + b'\0')
        end = time.time() + (timeout or self.timeout)
        with self._cv:
            while i not in self._replies:
                if -1 in self._replies: raise CDPError(f'Chromium exited (code {self.proc.poll()}) during {method}')
                left = end - time.time()
                if left <= 0: raise CDPError(f'no reply to {method} in {timeout or self.timeout} s')
                self._cv.wait(left)
            r = self._replies.pop(i)
        if 'error' in r: raise CDPError(f"{method}: {r['error'].get('message')}")
        return r.get('result', {})

    def open_tab(self, width=1280, height=1000):
        "Create a tab, attach to it (flat session) and enable the domains the checks listen to."
        tid = self.send('Target.createTarget', {'url': 'about:blank'}, session=False)['targetId']
        self.session = self.send('Target.attachToTarget', {'targetId': tid, 'flatten': True}, session=False)['sessionId']
        for d in ('Page', 'Runtime', 'Network', 'Log'): self.send(f'{d}.enable')
        self.send('Network.setCacheDisabled', {'cacheDisabled': True})
        self.height = height
        self.set_width(width)

    def set_width(self, width):
        "Resize the tab's window (the page reflows as in a resized browser window)."
        self.send('Emulation.setDeviceMetricsOverride', {'width': width, 'height': self.height, 'deviceScaleFactor': 1, 'mobile': False})

    def drain(self):
        "Return and clear the events received so far."
        out = []
        while True:
            try: out.append(self.events.get_nowait())
            except queue.Empty: return out

    def close(self):
        try: self.send('Browser.close', session=False, timeout=5)
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        try: os.close(self._cmd_w)
        except OSError: pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self): return self
    def __exit__(self, *a): self.close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args): pass
    def log_request(self, code='-', size='-'):
        self.server.hits.append((self.path, int(code) if str(code).isdigit() else 0))


class Server:
    "Serve a folder on 127.0.0.1 (an ephemeral port) from a thread; `hits` lists (path, status)."
    def __init__(self, root):
        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Handler, directory=str(root)))
        self.httpd.hits = []
        self.origin = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
    def close(self): self.httpd.shutdown(); self.httpd.server_close()
    def __enter__(self): return self
    def __exit__(self, *a): self.close()


# Runs in the page once it has loaded: images, maths, raw TeX, links and ids. Returns a JSON-able object.
PAGE_JS = r"""
(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src') || '(no src)');
  const SKIP = 'pre, code, script, style, textarea, kbd, samp, .katex, .sourceCode, .cell-output-stdout, .cell-output-stderr, .cell-output-error';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (el && !el.closest(SKIP)) parts.push(n.nodeValue);
  }
  const text = parts.join(' ');
  const pats = [/\$\$/, /\\\(|\\\)|\\\[|\\\]/,
    /\\(frac|dfrac|sum|prod|int|mathrm|mathbb|mathbf|mathcal|operatorname|begin|end|left|right|sqrt|alpha|beta|gamma|sigma|theta|cdot|times|leq|geq|log|exp|hat|tilde|bar|text)\b/,
    /(^|[\s(])\$[^\s$][^$\n]{0,200}?[^\s$\\]\$(?=$|[\s.,;:)!?])/];
  const rawTex = [];
  for (const p of pats) { const m = text.match(p); if (m) { const k = m.index; rawTex.push(text.slice(Math.max(0, k - 40), k + 60).replace(/\s+/g, ' ')); } }
  const math = Array.from(document.querySelectorAll('.math'));
  const unrendered = math.filter(m => !m.querySelector('.katex')).map(m => m.textContent.slice(0, 80));
  const katexErrors = Array.from(document.querySelectorAll('.katex-error')).map(e => (e.getAttribute('title') || e.textContent).slice(0, 120));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id).concat(Array.from(document.querySelectorAll('a[name]')).map(a => a.name));
  return {title: document.title, broken, rawTex, nMath: math.length, nKatex: document.querySelectorAll('.katex').length, nDisplay: document.querySelectorAll('.katex-display').length, nImg: imgs.length,
          unrendered, katexErrors, links, ids, textLength: document.body.innerText.length};
})()
"""


# Content a reader cannot see or reach, at the window's current width; returns a list of findings (strings).
CLIP_JS = r"""
(() => {
  // Three cases: the page is wider than the window (a page-wide scrollbar; the culprit is named), an element of the
  // text column runs out of it with no scroll box around it, and a box with overflow hidden/clip whose content is
  // larger than the box (cut off, no scrollbar). KaTeX's own elements are left out (its hidden MathML copy is a 1px
  // clipped box by design), but not the formula as a whole.
  const clipped = [], spilled = new Set();
  const main = document.querySelector('main') || document.body;
  const W = document.documentElement.clientWidth, docW = document.documentElement.scrollWidth, R = main.getBoundingClientRect().right;
  const label = el => `<${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? ' class="' + el.className + '"' : ''}> "${(el.textContent || '').replace(/\s+/g, ' ').trim().slice(0, 60)}"`;
  const scrollBox = el => getComputedStyle(el).overflowX !== 'visible';
  const inBox = (el, top) => { for (let a = el.parentElement; a && a !== top && a !== document.documentElement; a = a.parentElement) if (scrollBox(a)) return true; return false; };
  if (docW > W + 1) {
    let culprit = null;
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect(), pos = getComputedStyle(el).position;
      if (r.width > 0 && r.right > W + 1 && (!inBox(el, document.body) || pos === 'absolute' || pos === 'fixed')) { culprit = el; break; }
    }
    clipped.push(`the page is ${docW}px wide in a ${W}px window (a page-wide scrollbar)` + (culprit ? `; first element past the edge: ${label(culprit)}` : ''));
  }
  const walker2 = document.createTreeWalker(main, NodeFilter.SHOW_ELEMENT,
    {acceptNode: el => el.classList.contains('katex') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  for (let el = walker2.nextNode(); el; el = walker2.nextNode()) {
    const cs = getComputedStyle(el), r = el.getBoundingClientRect();
    if (r.width === 0 || cs.display === 'none' || cs.visibility === 'hidden') continue;
    const p = el.parentElement;
    if (r.right > R + 1 && !inBox(el, main) && !(p !== main && p.getBoundingClientRect().right > R + 1 && !scrollBox(p))) {
      clipped.push(`runs ${Math.round(r.right - R)}px out of the text column, with no scroll box around it: ${label(el)}`);
      spilled.add(el);
    }
    // scrollWidth/Height count the end padding after the content: content that only reaches into the padding is whole
    const hx = ['hidden', 'clip'].includes(cs.overflowX), hy = ['hidden', 'clip'].includes(cs.overflowY);
    if (hx && el.clientWidth > 2 && el.scrollWidth > el.clientWidth + parseFloat(cs.paddingRight) + 1)
      clipped.push(`cut off: ${el.scrollWidth}px of content in a ${el.clientWidth}px box with overflow-x ${cs.overflowX}: ${label(el)}`);
    else if (hy && el.clientHeight > 2 && el.scrollHeight > el.clientHeight + parseFloat(cs.paddingBottom) + 1)
      clipped.push(`cut off: ${el.scrollHeight}px of content in a ${el.clientHeight}px-high box with overflow-y ${cs.overflowY}: ${label(el)}`);
  }
  // text that runs out of its block (a long word or a nowrap line): the block's box stays in the column, its text not
  const texts = document.createTreeWalker(main, NodeFilter.SHOW_TEXT,
    {acceptNode: n => n.parentElement.closest('.katex, script, style') ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const range = document.createRange();
  for (let n = texts.nextNode(); n; n = texts.nextNode()) {
    if (!n.nodeValue.trim()) continue;
    range.selectNodeContents(n);
    const r = range.getBoundingClientRect(), el = n.parentElement;
    if (r.width === 0 || r.right <= R + 1 || inBox(n, main)) continue;
    let a = el; while (a && a !== main && !spilled.has(a)) a = a.parentElement;
    if (a && a !== main) continue;   // inside an element already reported
    clipped.push(`text runs ${Math.round(r.right - R)}px out of the text column, with no scroll box around it: ${label(el)}`);
    spilled.add(el);
  }
  return clipped;
})()
"""
# window widths at which CLIP_JS runs: a desktop window, a small laptop, a tablet (the sidebar folds away below 992 px)
CLIP_WIDTHS = (1280, 1024, 800)


def is_remote(url):
    "Whether a request URL goes to a host other than the loopback one (data:, blob:, about: are local)."
    u = urlsplit(url)
    if u.scheme not in ('http', 'https', 'ws', 'wss', 'ftp'): return False
    return (u.hostname or '') not in LOCAL_HOSTS


def clipped(browser, widths=CLIP_WIDTHS):
    """CLIP_JS's findings at each window width in `widths` (the page reflows, it is not reloaded), each finding once,
    with the widths where it was seen; the window is left at the first width."""
    seen = {}
    for w in widths:
        browser.set_width(w)
        res = browser.send('Runtime.evaluate', {'expression': CLIP_JS, 'returnByValue': True})
        found = [f"clip check script failed: {res['exceptionDetails'].get('text')}"] if 'exceptionDetails' in res else res['result']['value']
        for f in found: seen.setdefault(re.sub(r'\d+px', 'Npx', f), (f, []))[1].append(w)
    if widths: browser.set_width(widths[0])
    return [f"at {', '.join(map(str, ws))} px: {f}" for f, ws in seen.values()]


def visit(browser, url, settle=0.3, timeout=30, widths=CLIP_WIDTHS):
    "Load `url` in the tab and return what the page did: load status, console errors, requests, PAGE_JS's and CLIP_JS's findings."
    browser.send('Page.navigate', {'url': 'about:blank'}); time.sleep(0.05); browser.drain()
    r = {'url': url, 'load_error': None, 'status': None, 'console': [], 'requests': [], 'failed': []}
    nav = browser.send('Page.navigate', {'url': url})
    if nav.get('errorText'): r['load_error'] = nav['errorText']
    inflight, loaded, t_end, quiet_since = set(), False, time.time() + timeout, None
    while time.time() < t_end:
        try: ev = browser.events.get(timeout=0.05)
        except queue.Empty:
            ev = None
            if loaded and not inflight:
                quiet_since = quiet_since or time.time()
                if time.time() - quiet_since >= settle: break
            continue
        m, p = ev.get('method'), ev.get('params', {})
        if m == 'Page.loadEventFired': loaded = True
        elif m == 'Network.requestWillBeSent':
            r['requests'].append(p['request']['url']); inflight.add(p['requestId']); quiet_since = None
        elif m in ('Network.loadingFinished', 'Network.loadingFailed'):
            inflight.discard(p['requestId'])
            if m == 'Network.loadingFailed' and not p.get('canceled'):
                r['failed'].append(f"{p.get('errorText')} ({p.get('type')})")
        elif m == 'Network.responseReceived':
            if p.get('type') == 'Document' and r['status'] is None: r['status'] = p['response']['status']
            if p['response']['status'] >= 400: r['failed'].append(f"HTTP {p['response']['status']} {p['response']['url']}")
        elif m == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
            r['console'].append('console.' + p['type'] + ': ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
        elif m == 'Runtime.exceptionThrown':
            d = p.get('exceptionDetails', {})
            r['console'].append('exception: ' + (d.get('exception', {}).get('description') or d.get('text', '')))
        elif m == 'Log.entryAdded' and p['entry'].get('level') == 'error':
            e = p['entry']; r['console'].append(f"log.{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
    if not loaded and not r['load_error']: r['load_error'] = f'no load event in {timeout} s'
    res = browser.send('Runtime.evaluate', {'expression': PAGE_JS, 'awaitPromise': True, 'returnByValue': True})
    if 'exceptionDetails' in res: r['load_error'] = r['load_error'] or f"page check script failed: {res['exceptionDetails'].get('text')}"
    else: r.update(res['result']['value'])
    r['clipped'] = clipped(browser, widths)
    for ev in browser.drain():   # anything that arrived while the check script ran
        if ev.get('method') == 'Network.requestWillBeSent': r['requests'].append(ev['params']['request']['url'])
    r['remote'] = sorted({u for u in r['requests'] if is_remote(u)})
    return r


def screenshot(browser, path, selectors=()):
    "Save a PNG of the viewport, scrolled to the first element that one of `selectors` (tried in order) finds."
    for sel in selectors:
        # `__nth__K`: the K-th display formula
        q = (f"document.querySelectorAll('.katex-display')[{int(sel[7:])}]" if sel.startswith('__nth__')
             else f"document.querySelector({json.dumps(sel)})")
        found = browser.send('Runtime.evaluate', {'returnByValue': True, 'expression':
            f"(e => {{ if (!e) return false; e.scrollIntoView({{block: 'center'}}); return true; }})({q})"})
        if found.get('result', {}).get('value'): break
    # let the scrolled-to part of a long page decode and paint before the capture
    browser.send('Runtime.evaluate', {'awaitPromise': True, 'expression':
        "Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))"
        ".then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))"})
    time.sleep(1.0)
    data = browser.send('Page.captureScreenshot', {'format': 'png'})['data']
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(base64.b64decode(data))
    return Path(path)


def site_pages(root):
    "Every HTML page of a built site, as paths relative to `root` (the vendored `site_libs/` excluded)."
    root = Path(root)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob('*.html') if p.relative_to(root).parts[0] != 'site_libs')


def check_links(root, origin, visits):
    "Broken same-origin links: a missing file, or a #fragment that names no element of the target page."
    root = Path(root)
    ids = {v['url']: set(v.get('ids', [])) for v in visits}
    bad = []
    for v in visits:
        for href in sorted(set(v.get('links', []))):
            if not href.startswith(origin + '/'): continue
            base, frag = urldefrag(href)
            rel = unquote(urlsplit(base).path).lstrip('/')
            f = root/rel
            if f.is_dir(): f = f/'index.html'; base = base.rstrip('/') + '/index.html'
            if not f.is_file(): bad.append(f"{v['url'][len(origin):]} -> {href[len(origin):]}: no such file"); continue
            if frag and f.suffix == '.html':
                target = ids.get(base)
                if target is None:  # a page that was not visited: read its ids from the file
                    target = set(re.findall(r'\b(?:id|name)=["\']([^"\']+)["\']', f.read_text(encoding='utf-8', errors='replace')))
                if unquote(frag) not in target: bad.append(f"{v['url'][len(origin):]} -> {href[len(origin):]}: no element with id {unquote(frag)!r}")
    return bad


def static_remote_refs(root):
    "References that make a browser fetch from another host, found in the site's HTML and CSS files (links in <a> are fine)."
    pat_html = re.compile(r'<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(src|href|data)\s*=\s*["\']?((?:https?:)?//[^"\'\s>]+)', re.I)
    pat_css = re.compile(r'(?:url\(\s*["\']?|@import\s+["\'])((?:https?:)?//[^"\')\s]+)', re.I)
    out = []
    for p in sorted(Path(root).rglob('*')):
        if p.suffix not in ('.html', '.css') or not p.is_file(): continue
        s = p.read_text(encoding='utf-8', errors='replace')
        refs = [m.group(3) for m in pat_html.finditer(s)] if p.suffix == '.html' else []
        refs += [m.group(1) for m in pat_css.finditer(s)]  # in HTML: <style> blocks and style= attributes
        out += [f'{p.relative_to(root)}: {u}' for u in dict.fromkeys(refs)]
    return out


def check_site(root, shots=None, pages=None, api_page=None):
    "Visit every page of the site in `root`; return (visits, server hits, origin, screenshot paths)."
    root = Path(root)
    pages = pages if pages is not None else site_pages(root)
    saved = {}
    with Server(root) as srv, Browser() as br:
        br.open_tab()
        visits = [visit(br, f'{srv.origin}/{p}') for p in pages]
        if shots:
            shots = Path(shots)
            if 'index.html' in pages:
                visit(br, f'{srv.origin}/index.html'); saved['front'] = screenshot(br, shots/'front.png')
            # the API page with the most show_doc entries (each has a `source` link)
            ndoc = {p: (root/p).read_text(encoding='utf-8', errors='replace').count('>source</a>') for p in pages if p != 'index.html'}
            api = api_page or (max(ndoc, key=ndoc.get) if ndoc else None)
            if api:
                visit(br, f'{srv.origin}/{api}'); saved['api'] = screenshot(br, shots/f"api_{Path(api).stem}.png")
            rel = lambda v: v['url'][len(srv.origin) + 1:]
            # the page with the most display formulas (another than the API page when there is one), at its middle one
            withmath = sorted((v for v in visits if v.get('nKatex')), key=lambda v: (rel(v) == api, -v.get('nDisplay', 0)))
            if withmath:
                v = withmath[0]; k = v.get('nDisplay', 0) // 2
                visit(br, f'{srv.origin}/{rel(v)}')
                saved['math'] = screenshot(br, shots/f"math_{Path(rel(v)).stem}.png",
                                           ('.katex-display', '.katex') if not k else (f'__nth__{k}',))
            # the page with the most images (plots), at its first one
            withimg = sorted((v for v in visits if v.get('nImg')), key=lambda v: -v.get('nImg', 0))
            if withimg:
                v = withimg[0]; visit(br, f'{srv.origin}/{rel(v)}')
                saved['plot'] = screenshot(br, shots/f"plot_{Path(rel(v)).stem}.png", ('main img',))
        hits = list(srv.httpd.hits)
        return visits, hits, srv.origin, saved


def problems(root, visits, origin):
    "Every problem found, by kind: load, console, math, images, links, remote, clip."
    out = {k: [] for k in ('load', 'console', 'math', 'images', 'links', 'remote', 'clip')}
    for v in visits:
        name = v['url'][len(origin):]
        if v['load_error']: out['load'].append(f"{name}: {v['load_error']}")
        elif v['status'] != 200: out['load'].append(f"{name}: HTTP status {v['status']}")
        elif not v.get('textLength'): out['load'].append(f'{name}: the page shows no text')
        out['console'] += [f'{name}: {c}' for c in v['console']]
        out['math'] += [f'{name}: raw TeX in the text: ...{t}...' for t in v.get('rawTex', [])]
        out['math'] += [f'{name}: maths not rendered by KaTeX: {t}' for t in v.get('unrendered', [])]
        out['math'] += [f'{name}: KaTeX error: {t}' for t in v.get('katexErrors', [])]
        out['images'] += [f'{name}: broken image {s}' for s in v.get('broken', [])]
        out['remote'] += [f'{name}: request to {u}' for u in v['remote']]
        out['clip'] += [f'{name}: {c}' for c in v.get('clipped', [])]
    out['links'] = check_links(root, origin, visits)
    return out


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description='Check a built site in headless Chromium.')
    ap.add_argument('root', nargs='?', default='_docs')
    ap.add_argument('--shots', default=None, help='folder for screenshots of the front page, an API page and a page with maths')
    a = ap.parse_args(argv)
    t = time.time()
    visits, hits, origin, saved = check_site(a.root, a.shots)
    probs = problems(a.root, visits, origin)
    probs['remote'] += [f'(in files) {s}' for s in static_remote_refs(a.root)]
    n = sum(len(v) for v in probs.values())
    for k, v in probs.items():
        print(f'{k}: {len(v)} problem(s)')
        for s in v: print('   ', s)
    print(f'{len(visits)} page(s), {sum(v.get("nKatex", 0) for v in visits)} KaTeX formulas, {len(hits)} local requests, '
          f'screenshots: {", ".join(str(p) for p in saved.values()) or "none"} ({time.time()-t:.1f} s)')
    return 1 if n else 0


if __name__ == '__main__': sys.exit(main())

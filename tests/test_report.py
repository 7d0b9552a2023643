"""`lsnb report`'s page in a real browser: headless Chromium (as tests/test_docs.py drives it) opens a report of three
small runs and finds no console error, no request to any host but the local server, every image decoded and the
tables there. Runs are written record by record (no model), so the test takes seconds; it needs Chromium only."""
import json, sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT/'tools'))
import check_site  # noqa: E402
from test_docs import _need_browser  # noqa: E402  (fails, or skips with LSNB_SKIP_BROWSER=1, with one line where Chromium is missing)

PAGE_CHECK = """(() => ({tables: document.querySelectorAll('table').length,
  rows: document.querySelectorAll('tbody tr').length,
  images: Array.from(document.images).map(i => ({w: i.naturalWidth, h: i.naturalHeight, ok: i.complete, data: i.src.startsWith('data:image/png')})),
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent),
  notes: Array.from(document.querySelectorAll('.note')).map(n => n.textContent)}))()"""


def _records(n, seed, prefix='q', subjects=('',), task='arc'):
    "Records as lsnb eval writes them (`MCRecord.to_dict()`): 3 to 5 options, random log-likelihoods drawn with `seed`."
    from lsnb.scoring import Evidence, make_record
    items, rng, out = np.random.default_rng(len(prefix + task)), np.random.default_rng(seed), []   # the items (options, answers) of a
    for i in range(n):                                                                            # task are the same in every run
        k = int(items.integers(3, 6))
        it = dict(id=f'{prefix}{i}', task=task, subject=subjects[i % len(subjects)], language='en', answer=int(items.integers(0, k)))
        out.append(make_record(it, 'option', Evidence(rng.normal(size=k) * 2, np.full(k, 3), np.full(k, 10)), 'plain', 0).to_dict())
    return out


def _write(folder, name, recs):
    folder.mkdir(parents=True, exist_ok=True)
    (folder/f'{name}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    "A report of three runs: two on the same items, one with no item in common and a set of its own with subjects."
    _need_browser(build=False)
    from lsnb.report import write_report
    d = tmp_path_factory.mktemp('report')
    _write(d/'base', 'arc.option.0shot', _records(60, 0))
    _write(d/'tuned', 'arc.option.0shot', _records(60, 1))
    _write(d/'other', 'arc.option.0shot', _records(30, 2, prefix='x'))
    _write(d/'other', 'mmlu.option.0shot', _records(90, 3, subjects=('algebra', 'biology', 'law'), task='mmlu'))
    cmp = write_report([d/'base', d/'tuned', d/'other'], d/'site'/'report.html', n_boot=100)
    with check_site.Server(d/'site') as srv, check_site.Browser() as br:
        br.open_tab()
        visit = check_site.visit(br, f'{srv.origin}/report.html')
        page = br.send('Runtime.evaluate', {'expression': PAGE_CHECK, 'returnByValue': True})['result']['value']
        hits = list(srv.httpd.hits)
    return dict(cmp=cmp, visit=visit, page=page, hits=hits, origin=srv.origin, folder=d/'site')


def test_loads_without_errors(report):
    v = report['visit']
    assert not v['load_error'] and v['status'] == 200, v
    assert not v['console'], v['console']


def test_no_request_to_any_host(report):
    "The page is self-contained: the browser fetched the page itself from the local server, and nothing else."
    assert not report['visit']['remote'], report['visit']['remote']
    assert report['hits'] == [('/report.html', 200)], report['hits']
    assert check_site.static_remote_refs(report['folder']) == []


def test_images_decoded(report):
    imgs = report['page']['images']
    assert len(imgs) == 3, imgs          # two overlaid diagrams (arc, mmlu) and the per-subject panels of `other`
    assert all(i['ok'] and i['w'] > 0 and i['h'] > 0 and i['data'] for i in imgs), imgs
    assert not report['visit']['broken']


def test_tables_and_notes(report):
    p, cmp = report['page'], report['cmp']
    assert p['tables'] >= 5 and p['rows'] >= 10, p          # runs, metrics x2, paired, per-subject
    assert p['headings'] == ['arc.option.0shot', 'mmlu.option.0shot']
    notes = ' | '.join(p['notes'])
    assert 'other: no paired differences (0 items in common' in notes and 'has no mmlu.option.0shot' in notes, notes
    assert cmp['sets']['arc.option.0shot']['paired']['tuned']['n_shared'] == 60


def test_nothing_clipped(report):
    assert not report['visit']['clipped'], report['visit']['clipped']

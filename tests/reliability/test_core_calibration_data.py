"""Reliability regression tests of issue 17 for `lsnb.core`, `lsnb.calibration`, `lsnb.data` and `lsnb.scoring`: one test
per entry of `catalogue_cal.json` (the test's name starts with the entry's id), each asserting the right result against an
independent reference or the precise error (its type and the words naming the argument or file)."""
import os, sys, json, gzip, math, signal, subprocess, tarfile, time, warnings, argparse
from pathlib import Path
import numpy as np, pytest
from scipy import special, optimize
from lsnb import core, calibration as C, data as D, scoring as S
from rel_helpers import _raises, check_catalogue

CAT = Path(__file__).with_name('catalogue_cal.json')
ROOT = Path(__file__).resolve().parents[2]

def _rng(): return np.random.default_rng(int(np.random.SeedSequence().entropy % 2**31))   # fresh inputs on every run
def _ca(n=60, rng=None):
    rng = rng or _rng(); c = rng.uniform(0.3, 1, n); return c, (rng.random(n) < c).astype(float)
def _ece_ref(c, a, M=15):
    "An independent loop: equal-width bins [lo, hi), the last closed."
    tot = 0.
    for m in range(M):
        lo, hi = m / M, (m + 1) / M
        s = (c >= lo) & ((c < hi) if m < M - 1 else (c <= hi))
        if s.any(): tot += s.mean() * abs(a[s].mean() - c[s].mean())
    return tot

def test_catalogue_complete(): check_catalogue(CAT, globals())

# ---------------------------------------------------------------- core: JSONL records
def _recs(n, big=0): return [{'i': i, 'text': 'é漢' * (i % 3), 'pad': 'x' * big} for i in range(n)]

def test_core_01_append_after_torn_line(tmp_path):
    p = tmp_path/'r.jsonl'; core.append_jsonl(p, _recs(3))
    p.write_bytes(p.read_bytes()[:-7])                       # killed in the middle of the last line
    got = core.read_jsonl(p); assert got == _recs(2)
    core.append_jsonl(p, [{'i': 'a'}]); core.append_jsonl(p, [{'i': 'b'}])
    assert core.read_jsonl(p) == _recs(2) + [{'i': 'a'}, {'i': 'b'}]

def test_core_02_torn_inside_utf8_char(tmp_path):
    p = tmp_path/'u.jsonl'; p.write_bytes(('{"a": "é"}\n{"a": "é').encode('utf-8')[:-1])   # cut inside a 2-byte character
    assert core.read_jsonl(p) == [{'a': 'é'}]
    core.append_jsonl(p, [{'a': 1}]); assert core.read_jsonl(p) == [{'a': 'é'}, {'a': 1}]

def test_core_03_torn_middle_line_names_file_and_line(tmp_path):
    p = tmp_path/'m.jsonl'; p.write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    _raises(lambda: core.read_jsonl(p), ValueError, str(p), 'line 2 of 3 is not valid JSON')

def test_core_04_fragment_joined_to_record_on_last_line(tmp_path):
    p = tmp_path/'e.jsonl'; p.write_text('{"a": 1}\n{"a": 2, "to{"a": 3}\n')   # what an older append_jsonl left
    _raises(lambda: core.read_jsonl(p), ValueError, str(p), 'line 2 of 2 is not valid JSON')

def test_core_05_append_a_dict_instead_of_a_list(tmp_path):
    p = tmp_path/'d.jsonl'
    _raises(lambda: core.append_jsonl(p, {'a': 1, 'b': 2}), TypeError, 'records must be a list of dicts')
    _raises(lambda: core.append_jsonl(p, [{'a': 1}, 'b']), TypeError, 'records: item 1 is a str')
    assert not p.exists()

def test_core_06_unserialisable_record_writes_nothing(tmp_path):
    p = tmp_path/'s.jsonl'; core.append_jsonl(p, [{'a': 0}])
    _raises(lambda: core.append_jsonl(p, [{'a': 1}, {'b': {1, 2}}]), TypeError, 'set', 'not JSON serialisable')
    assert core.read_jsonl(p) == [{'a': 0}]

def test_core_07_nan_value_round_trips(tmp_path):
    p = tmp_path/'n.jsonl'; core.append_jsonl(p, [{'a': float('nan'), 'b': np.float32(1.5)}])
    r = core.read_jsonl(p); assert math.isnan(r[0]['a']) and r[0]['b'] == 1.5

def test_core_08_crlf_lines(tmp_path):
    p = tmp_path/'c.jsonl'; p.write_bytes(b'{"a": 1}\r\n{"a": 2}\r\n')
    assert core.read_jsonl(p) == [{'a': 1}, {'a': 2}]
    core.append_jsonl(p, [{'a': 3}]); assert core.read_jsonl(p) == [{'a': 1}, {'a': 2}, {'a': 3}]

_WRITER = '''
import sys, os; sys.path.insert(0, sys.argv[2])
from lsnb.core import append_jsonl
i = int(sys.argv[3])
while True:
    append_jsonl(sys.argv[1], [{"i": i, "pad": "x" * (i % 7) * 300000}]); i += 1
'''

def test_core_09_sigkill_while_appending(tmp_path):
    "A real process SIGKILLed at random moments while it appends; after each kill the file reads, and a resume appends cleanly."
    rng = _rng(); p = tmp_path/'k.jsonl'; expect = []; torn = 0
    for trial in range(6):
        proc = subprocess.Popen([sys.executable, '-c', _WRITER, str(p), str(ROOT), str(len(expect))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not p.exists() or p.stat().st_size == 0 or len(core.read_jsonl(p)) <= len(expect): time.sleep(0.005)
        time.sleep(float(rng.uniform(0, 0.05)))
        proc.send_signal(signal.SIGKILL); proc.wait()
        torn += not p.read_bytes().endswith(b'\n')
        got = core.read_jsonl(p)                          # readable whatever was cut
        assert [r['i'] for r in got] == list(range(len(got))) and len(got) > len(expect)
        assert all(r['pad'] == 'x' * (r['i'] % 7) * 300000 for r in got)
        expect = got
    core.append_jsonl(p, [{'i': len(expect), 'pad': ''}])
    assert [r['i'] for r in core.read_jsonl(p)] == list(range(len(expect) + 1))

def test_core_10_truncated_at_every_byte(tmp_path):
    recs = _recs(4)
    full = b''.join(json.dumps(r, ensure_ascii=False).encode('utf-8') + b'\n' for r in recs)
    ends = [i for i, b in enumerate(full) if b == 10]         # positions of the newlines
    for cut in range(len(full) + 1):
        p = tmp_path/f'c{cut}.jsonl'; p.write_bytes(full[:cut])
        whole = sum(e <= cut for e in ends)                   # complete once the closing brace is in (before its newline)
        assert core.read_jsonl(p) == recs[:whole], cut
        core.append_jsonl(p, [{'i': 'new'}])
        assert core.read_jsonl(p) == recs[:whole] + [{'i': 'new'}], cut

# ---------------------------------------------------------------- calibration
def test_cal_01_bootstrap_n1():
    _raises(lambda: C.bootstrap_ci('ece', [0.7], [1.0], n_boot=100), ValueError, 'at least 2 items', 'N=1')
    _raises(lambda: C.bootstrap_ci(lambda c, a: float(np.mean(a)), np.array([0.7]), np.array([1.]), n_boot=50), ValueError, 'at least 2 items')

def test_cal_02_temperature_bounds_reversed():
    _raises(lambda: C.fit_temperature(*C.synthetic_predictions(200), bounds=(10, 1)), ValueError, 'bounds', '0 < lo < hi')

def test_cal_03_smooth_ece_tiny_bandwidth():
    _raises(lambda: C.smooth_ece(*_ca(), bandwidth=1e-6), ValueError, 'bandwidth', '[1e-4, 10]')
    c, a = _ca(); v = C.smooth_ece(c, a, bandwidth=1e-4); assert 0 <= v <= 1

def test_cal_04_grouped_report_none_label():
    _raises(lambda: C.grouped_report(*_ca(6), ['a', None, 'b', 'a', 'b', 'a']), ValueError, 'groups', 'no group label', 'index 1')

def test_cal_05_grouped_report_nan_label():
    _raises(lambda: C.grouped_report(*_ca(6), np.array([1., 2., np.nan, 1., 2., 1.])), ValueError, 'groups', 'no group label', 'index 2')

def test_cal_06_truncated_npz_every_cut(tmp_path):
    rng = _rng(); p = tmp_path/'s.npz'; z = rng.normal(size=(80, 4)); np.savez(p, logits=z, labels=rng.integers(0, 4, 80))
    b = p.read_bytes()
    for cut in list(range(0, len(b), max(1, len(b) // 60))) + [len(b) - 1]:
        q = tmp_path/f't{cut}.npz'; q.write_bytes(b[:cut])
        _raises(lambda: C.read_predictions(q), ValueError, str(q))

def test_cal_07_n_bins_zero_checked_first(tmp_path):
    ns = C.add_args(argparse.ArgumentParser()).parse_args([str(tmp_path/'missing.jsonl'), '--n-bins', '0'])
    _raises(lambda: C.check_args(ns), ValueError, '--n-bins must be >= 1, got 0')   # before any file is read
    ns = C.add_args(argparse.ArgumentParser()).parse_args([str(tmp_path/'missing.jsonl'), '--bootstrap', '1'])
    _raises(lambda: C.check_args(ns), ValueError, '--bootstrap must be 0')
    ns = C.add_args(argparse.ArgumentParser()).parse_args([str(tmp_path/'missing.jsonl'), '--plot', 'x.bmpx'])
    _raises(lambda: C.check_args(ns), ValueError, '--plot x.bmpx', 'suffix')

def test_cal_08_plot_written_atomically(tmp_path, monkeypatch):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.figure as mf
    fig = C.reliability_diagram(*_ca(), 10); p = tmp_path/'fig.png'; p.write_bytes(b'OLD FIGURE')
    orig = mf.Figure.savefig
    def boom(self, fname, *a, **k):
        Path(fname).write_bytes(b'\x89PNG half'); raise KeyboardInterrupt('killed while saving')
    monkeypatch.setattr(mf.Figure, 'savefig', boom)
    with pytest.raises(KeyboardInterrupt): C.save_figure(fig, p)
    assert p.read_bytes() == b'OLD FIGURE' and os.listdir(tmp_path) == ['fig.png']   # the old file, no temporary left
    monkeypatch.setattr(mf.Figure, 'savefig', orig)
    C.save_figure(fig, p); assert p.read_bytes()[:4] == b'\x89PNG'

def test_cal_09_legend_does_not_cover_bars():
    import matplotlib; matplotlib.use('Agg')
    rng = _rng()
    for c, a in [(np.r_[rng.uniform(0.02, 0.3, 30), rng.uniform(0.5, 1, 70)], np.r_[np.ones(30), rng.random(70) < 0.7].astype(float)),
                 (np.full(50, 0.05), np.ones(50)), _ca(300, rng)]:
        fig = C.reliability_diagram(c, a, 10); fig.canvas.draw()
        ax = fig.axes[0]; lb = ax.get_legend().get_window_extent()
        assert not any(lb.overlaps(b.get_window_extent()) for b in ax.patches)
        fb = fig.bbox; assert lb.x1 <= fb.x1 + 1 and lb.y1 <= fb.y1 + 1      # inside the figure, not cut off
        hl = fig.axes[1].get_legend().get_window_extent(); assert hl.x1 <= fb.x1 + 1 and not any(hl.overlaps(b.get_window_extent()) for b in fig.axes[1].patches)
        fig2 = C.reliability_diagrams({'a': (c, a), 'b': _ca(100, rng)}, 10); fig2.canvas.draw()
        lb2, ax2 = fig2.axes[0].get_legend().get_window_extent(), fig2.axes[0]
        assert not lb2.overlaps(ax2.get_window_extent()) and lb2.x1 <= fig2.bbox.x1 + 1
        matplotlib.pyplot.close('all')

def test_cal_10_compute_metrics_one_item_interval_undefined():
    r = C.compute_metrics(conf=[0.7], correct=[1.], n_boot=100)
    assert r['n'] == 1 and abs(r['ece'] - 0.3) < 1e-12 and all(math.isnan(v) for k in r if k.endswith('_ci') for v in r[k])

def test_cal_11_paired_bootstrap_n1():
    _raises(lambda: C.paired_bootstrap('ece', ([0.7], [1.]), ([0.6], [0.]), n_boot=100), ValueError, 'at least 2 items', 'N=1')

def test_cal_12_grouped_report_group_of_one():
    c, a = _ca(7); rep = C.grouped_report(c, a, list('aaaaaab'), n_boot=50)
    b = rep['rows'][1]; assert b['group'] == 'b' and b['n'] == 1 and math.isnan(b['ece_lo']) and math.isnan(b['ece_hi'])
    assert abs(b['ece'] - abs(a[6] - c[6])) < 1e-12 and rep['rows'][0]['ece_lo'] <= rep['rows'][0]['ece_hi']
    assert 'n/a' in rep.to_markdown()

def test_cal_13_nan_confidence(): _raises(lambda: C.ece([0.5, np.nan], [1, 0]), ValueError, 'confidences', 'NaN')
def test_cal_14_inf_confidence(): _raises(lambda: C.ece([0.5, np.inf], [1, 0]), ValueError, 'confidences', 'infinite')
def test_cal_15_probs_not_summing_to_one(): _raises(lambda: C.brier_score([[0.5, 0.6], [0.5, 0.5]], [0, 1]), ValueError, 'probs', 'do not sum to 1')
def test_cal_16_label_out_of_range(): _raises(lambda: C.nll([[0.5, 0.5]], [2]), ValueError, 'labels', 'out of range')
def test_cal_17_one_class(): _raises(lambda: C.brier_score([[1.0], [1.0]], [0, 0]), ValueError, 'probs', 'at least 2 classes')
def test_cal_18_empty(): _raises(lambda: C.ece([], []), ValueError, 'empty')
def test_cal_19_mismatched_lengths(): _raises(lambda: C.ece([0.5, 0.6], [1]), ValueError, 'mismatched lengths', '2 confidences but 1')
def test_cal_20_object_dtype(): _raises(lambda: C.ece(np.array(['0.5', '0.6'], dtype=object), [1, 0]), TypeError, 'confidences', 'numeric')

def test_cal_21_meta_tensor():
    torch = pytest.importorskip('torch')
    _raises(lambda: C.ece(torch.empty(5, device='meta'), torch.ones(5)), ValueError, 'confidences', 'meta device')

def test_cal_22_tensor_requiring_grad():
    torch = pytest.importorskip('torch')
    t = torch.rand(40, requires_grad=True); a = (torch.rand(40) < t).float()
    assert abs(C.ece(t, a) - _ece_ref(t.detach().double().numpy(), a.double().numpy())) < 1e-6

def test_cal_23_n_bins_huge(): _raises(lambda: C.ece(*_ca(), n_bins=10**9), ValueError, 'n_bins must be <= 1,000,000')
def test_cal_24_unknown_binning(): _raises(lambda: C.ece(*_ca(), binning='quantile'), ValueError, 'binning', "'quantile'")
def test_cal_25_ci_outside(): _raises(lambda: C.bootstrap_ci('ece', *_ca(), ci=1.5), ValueError, 'ci must be in (0, 1)')
def test_cal_26_plus_inf_logit(): _raises(lambda: C.nll([[np.inf, 0.]], [0], from_logits=True), ValueError, 'logits', '+inf')

def test_cal_27_minus_inf_logit_is_a_masked_option():
    rng = _rng(); z = rng.normal(size=(30, 4)); z[:, 3] = -np.inf; y = rng.integers(0, 3, 30)
    ref = -np.mean(special.log_softmax(z[:, :3], 1)[np.arange(30), y])
    assert abs(C.nll(z, y, from_logits=True) - ref) < 1e-12
    zz = z.copy(); zz[0, 3] = 1.; _raises(lambda: C.nll(np.full((2, 3), -np.inf), [0, 1], from_logits=True), ValueError, 'row 0', '-inf everywhere')

def test_cal_28_fit_temperature_one_item():
    with pytest.warns(UserWarning, match='lower bound'): T = C.fit_temperature([[2., 0.]], [0])
    assert T == 0.01                                         # the NLL decreases all the way to T -> 0: the bound, said so

def test_cal_29_constant_logits():
    with pytest.warns(UserWarning, match='does not depend on T'): T = C.fit_temperature(np.zeros((20, 3)), _rng().integers(0, 3, 20))
    assert T == 1.0

def test_cal_30_temperature_zero(): _raises(lambda: C.apply_temperature(np.ones((2, 2)), 0.), ValueError, 'temperature', '> 0')
def test_cal_31_temperature_negative(): _raises(lambda: C.apply_temperature(np.ones((2, 2)), -1.), ValueError, 'temperature', '> 0')
def test_cal_32_bounds_nan(): _raises(lambda: C.fit_temperature(*C.synthetic_predictions(100, temperature=50), bounds=(0.5, float('nan'))), ValueError, 'bounds')
def test_cal_33_max_iter_zero(): _raises(lambda: C.fit_temperature(*C.synthetic_predictions(100), max_iter=0), ValueError, 'max_iter')
def test_cal_34_correct_not_binary(): _raises(lambda: C.ece([0.5, 0.6], [2, 0]), ValueError, 'correct', '0/1')
def test_cal_35_fractional_label(): _raises(lambda: C.brier_score([[0.5, 0.5]], [0.5]), ValueError, 'labels', 'integer')
def test_cal_36_n_boot_bool(): _raises(lambda: C.compute_metrics(conf=[0.5, 0.6], correct=[1, 0], n_boot=True), ValueError, 'n_boot', 'True')
def test_cal_37_smooth_ece_huge_bandwidth(): _raises(lambda: C.smooth_ece(*_ca(), bandwidth=1e6), ValueError, 'bandwidth')
def test_cal_38_groups_2d(): _raises(lambda: C.grouped_report(*_ca(6), [['a']] * 6), ValueError, 'mismatched lengths', 'groups of shape (6, 1)')

def test_cal_39_reliability_grid_none_label():
    _raises(lambda: C.reliability_grid(*_ca(4), ['a', None, 'a', 'a']), ValueError, 'groups', 'no group label')

def test_cal_40_empty_records_file(tmp_path):
    p = tmp_path/'r.letter.0shot.jsonl'; p.write_text('')
    _raises(lambda: C.read_predictions(p), ValueError, str(p), 'empty')

def test_cal_41_unknown_format(tmp_path):
    p = tmp_path/'x.csv'; p.write_text('a,b\n1,2\n'); _raises(lambda: C.read_predictions(p), ValueError, str(p), 'not a format lsnb writes')
def test_cal_42_empty_folder(tmp_path): _raises(lambda: C.read_predictions(tmp_path), FileNotFoundError, str(tmp_path), 'no predictions')
def test_cal_43_missing_path(tmp_path): _raises(lambda: C.read_predictions(tmp_path/'nope.jsonl'), FileNotFoundError, 'nope.jsonl')

def _records(n, rng=None, **kw):
    "Consistent records as lsnb eval writes them (through make_record), on fresh random evidence."
    rng = rng or _rng(); out = []
    for i in range(n):
        it = D.MCItem(f'x/{i}', 'q', ['a', 'b', 'c'], int(rng.integers(0, 3)), task='x')
        out.append(S.make_record(it, 'letter', S.Evidence(rng.normal(size=3), None, None), 'plain', 0).to_dict() | kw)
    return out

def test_cal_44_torn_last_record(tmp_path):
    rs = _records(5); p = tmp_path/'x.letter.0shot.jsonl'
    p.write_text(''.join(json.dumps(r) + '\n' for r in rs[:4]) + json.dumps(rs[4])[:40])   # lsnb eval killed mid-write
    with pytest.warns(UserWarning, match='unterminated last line'): s = C.read_predictions(p)['x.letter.0shot']
    assert np.allclose(s['probs'], [r['probs'] for r in rs[:4]]) and list(s['labels']) == [r['answer'] for r in rs[:4]]

def test_cal_45_duplicate_item_ids(tmp_path):
    rs = _records(3); p = tmp_path/'d.jsonl'; p.write_text(''.join(json.dumps(r) + '\n' for r in rs + [rs[1]]))
    _raises(lambda: C.read_predictions(p), ValueError, str(p), "item 'x/1' appears twice", 'lines 2 and 4')

def test_cal_46_mixed_methods(tmp_path):
    rs = _records(3); rs[2]['method'] = 'option'; p = tmp_path/'m.jsonl'; p.write_text(''.join(json.dumps(r) + '\n' for r in rs))
    _raises(lambda: C.read_predictions(p), ValueError, str(p), 'several methods')

def test_cal_47_mixed_templates(tmp_path):
    rs = _records(3); rs[1]['template'] = 'chat'; p = tmp_path/'t.jsonl'; p.write_text(''.join(json.dumps(r) + '\n' for r in rs))
    _raises(lambda: C.read_predictions(p), ValueError, str(p), 'several templates')
    rs = _records(3); rs[1]['shots'] = 5; p.write_text(''.join(json.dumps(r) + '\n' for r in rs))
    _raises(lambda: C.read_predictions(p), ValueError, str(p), 'several few-shot counts')

def test_cal_48_truncated_gz(tmp_path):
    p = tmp_path/'b.jsonl.gz'; p.write_bytes(gzip.compress(b'{"a": 1}\n' * 50)[:-10])
    _raises(lambda: C.read_predictions(p), ValueError, str(p), 'neither an .npz nor UTF-8')

def test_cal_49_latin1_file(tmp_path):
    p = tmp_path/'l.jsonl'; p.write_bytes('{"id": "\xe9"}\n'.encode('latin-1')); _raises(lambda: C.read_predictions(p), ValueError, str(p), 'UTF-8')

def test_cal_50_unicode_and_huge_lines(tmp_path):
    rs = _records(4, subject='x' * 200000); p = tmp_path/'u.jsonl'
    for i, r in enumerate(rs): r['id'] = f'漢字/{i}'
    p.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rs), encoding='utf-8')
    s = C.read_predictions(p)['u']; assert np.allclose(s['probs'], [r['probs'] for r in rs])

def test_cal_51_float_n_bins(): _raises(lambda: C.ece(*_ca(), n_bins=15.0), ValueError, 'n_bins must be an integer')
def test_cal_52_bandwidth_nan(): _raises(lambda: C.smooth_ece(*_ca(), bandwidth=np.nan), ValueError, 'bandwidth')
def test_cal_53_max_iter_negative(): _raises(lambda: C.fit_temperature(*C.synthetic_predictions(100), max_iter=-3), ValueError, 'max_iter')

def test_cal_54_npz_corrupted_inside(tmp_path):
    rng = _rng(); p = tmp_path/'m.npz'; pr = special.softmax(rng.normal(size=(500, 4)), 1)
    np.savez_compressed(p, probs=pr, labels=rng.integers(0, 4, 500))
    b = bytearray(p.read_bytes()); b[200:260] = b'x' * 60; p.write_bytes(bytes(b))
    _raises(lambda: C.read_predictions(p), ValueError, str(p))

def test_cal_55_fit_temperature_against_scipy():
    rng = _rng()
    for T0 in (0.5, 1.7):
        z, y = C.synthetic_predictions(3000, 4, temperature=T0, seed=int(rng.integers(0, 2**31)))
        ref = optimize.minimize_scalar(lambda t: -special.log_softmax(z / t, 1)[np.arange(len(y)), y].mean(), bounds=(0.02, 50),
                                       method='bounded', options=dict(xatol=1e-10)).x
        assert abs(C.fit_temperature(z, y) - ref) < 1e-6

# ---------------------------------------------------------------- data
good = json.dumps({"query": "Question: q?", "choices": ["a", "b"], "gold": 0})
def _root(tmp_path, fname, text):
    d = tmp_path/'data'/'en_mc_llmfoundry'; d.mkdir(parents=True, exist_ok=True); (d/fname).write_text(text); return tmp_path/'data'

def test_data_01_bad_json_line(tmp_path):
    r = _root(tmp_path, 'arc_easy.jsonl', good + '\n{"query": "Question: x", "choi\n' + good + '\n')
    _raises(lambda: D.load_task('arc_easy', r, source='local'), ValueError, 'arc_easy', str(r/'en_mc_llmfoundry'/'arc_easy.jsonl'), 'line 2', 'not valid JSON')

def test_data_02_line_missing_query(tmp_path):
    r = _root(tmp_path, 'arc_easy.jsonl', good + '\n' + json.dumps({"choices": ["a", "b"], "gold": 0}) + '\n')
    _raises(lambda: D.load_task('arc_easy', r, source='local', strict=True), ValueError, 'arc_easy.jsonl line 2', "missing field 'query'")
    with pytest.warns(UserWarning, match="arc_easy.jsonl line 2: missing field 'query'"): items = D.load_task('arc_easy', r, source='local')
    assert [it.question for it in items] == ['q?']

def test_data_03_unknown_task(): _raises(lambda: D.load_task('bogus_task'), ValueError, "unknown task 'bogus_task'")
def test_data_04_unknown_language(): _raises(lambda: D.load_task('xcopa', languages='xx'), ValueError, 'xcopa', "unknown language(s) ['xx']")
def test_data_05_unknown_split(): _raises(lambda: D.load_task('arc_easy_200', split='validation'), ValueError, "no split 'validation'")
def test_data_06_item_missing_field(): _raises(lambda: D.MCItem.from_dict({'id': 'a', 'question': 'q', 'choices': ['x', 'y']}), ValueError, "missing field(s) ['answer']")
def test_data_07_item_not_a_dict(): _raises(lambda: D.MCItem.from_dict(['id', 'question']), TypeError, 'expected a dict', 'list')

def test_data_08_numpy_int_answer():
    it = D.MCItem('a/1', 'q', ['x', 'y'], np.int64(1)); assert it.answer == 1 and type(it.answer) is int
    assert json.loads(json.dumps(it.to_dict()))['answer'] == 1
    _raises(lambda: D.MCItem('a/1', 'q', ['x', 'y'], np.bool_(True)), TypeError, 'answer must be an int')

def test_data_09_limit_string(): _raises(lambda: D.load_task('arc_easy_200', limit='5'), ValueError, 'limit', "'5'")
def test_data_10_limit_bool(): _raises(lambda: D.load_task('arc_easy_200', limit=True), ValueError, 'limit', 'True')

def test_data_11_duplicate_item_ids(tmp_path):
    p = tmp_path/'items.jsonl'; p.write_text(''.join(json.dumps(dict(id='a/1', question=q, choices=['x', 'y'], answer=0)) + '\n' for q in 'ab'))
    _raises(lambda: D.load_task(str(p)), ValueError, str(p), 'line 2', "item id 'a/1' already used on line 1")

def test_data_12_taskspec_languages_string():
    _raises(lambda: D.TaskSpec('t', D.get_task('arc_easy').local, languages='de'), ValueError, "task 't'", 'languages', "'de'")

def test_data_13_truncated_gz(tmp_path):
    d = tmp_path/'okapi'/'m_arc'; d.mkdir(parents=True)
    b = gzip.compress(json.dumps([{"id": "ARC/1", "instruction": "q", "option_a": "x", "option_b": "y", "answer": "A"}]).encode())
    (d/'de_test.json.gz').write_bytes(b[:-6])
    _raises(lambda: D.load_task('m_arc', tmp_path, languages='de', source='local'), ValueError, 'm_arc', str(d/'de_test.json.gz'), 'damaged')

def test_data_14_bad_zip(tmp_path):
    (tmp_path/'mmlu_pro').mkdir(); (tmp_path/'mmlu_pro'/'x.zip').write_bytes(b'PK\x03\x04garbage')
    _raises(lambda: D.load_task('mmlu_pro', tmp_path, source='local'), ValueError, 'mmlu_pro', str(tmp_path/'mmlu_pro'/'x.zip'), 'damaged')

def test_data_15_bad_tar(tmp_path):
    (tmp_path/'exams').mkdir(); (tmp_path/'exams'/'test.jsonl.tar.gz').write_bytes(gzip.compress(b'nonsense' * 10))
    _raises(lambda: D.load_task('exams', tmp_path, source='local', languages='de'), ValueError, 'exams', 'test.jsonl.tar.gz', 'damaged')

def test_data_16_byte_order_mark(tmp_path):
    p = tmp_path/'bom.jsonl'; it = dict(id='a/1', question='q', choices=['x', 'y'], answer=1)
    p.write_text('\ufeff' + json.dumps(it) + '\n', encoding='utf-8')
    assert [x.to_dict() for x in D.load_task(str(p))] == [D.MCItem(**it).to_dict()]

def test_data_17_fewshot_negative(): _raises(lambda: D.fewshot_items('arc_easy_200', -1), ValueError, 'k must be a non-negative int')
def test_data_18_unknown_source(): _raises(lambda: D.load_task('arc_easy_200', source='bogus'), ValueError, 'source must be one of')
def test_data_19_taskspec_no_source(): _raises(lambda: D.TaskSpec('t'), ValueError, "task 't' needs a local loader or a Hub source")
def test_data_20_missing_file(tmp_path): _raises(lambda: D.load_task('arc_easy', tmp_path, source='local'), D.MissingDataError, 'arc_easy', 'en_mc_llmfoundry/arc_easy.jsonl')
def test_data_21_empty_languages(): _raises(lambda: D.load_task('xcopa', languages=''), ValueError, 'xcopa', 'languages is empty')
def test_data_22_choice_none(): _raises(lambda: D.MCItem('a/1', 'q', ['x', None], 0), TypeError, 'a/1', 'choice 1 must be a str')

def test_data_23_items_file_bad_record(tmp_path):
    p = tmp_path/'bad.jsonl'; p.write_text(json.dumps(dict(id='a/1', question='q', choices=['x', 'y'], answer=0)) + '\n{"id": "b"}\n')
    _raises(lambda: D.load_task(str(p)), ValueError, str(p), 'line 2', 'missing field(s)')

def test_data_24_unicode_and_huge_items(tmp_path):
    it = dict(id='漢/1', question='漢' * 200000, choices=['\U0001F600', 'é'], answer=1)
    p = tmp_path/'u.jsonl'; p.write_text(json.dumps(it, ensure_ascii=False) + '\n', encoding='utf-8')
    assert [x.to_dict() for x in D.load_task(str(p))] == [D.MCItem(**it).to_dict()]

def test_data_25_strict_error_prefixed_once(tmp_path):
    r = _root(tmp_path, 'arc_easy.jsonl', good + '\n' + json.dumps({"query": "Question: x", "choices": ["a", "b"], "gold": 5}) + '\n')
    msg = _raises(lambda: D.load_task('arc_easy', r, source='local', strict=True), ValueError, 'arc_easy.jsonl line 2', 'answer 5 out of range')
    assert msg.count('arc_easy.jsonl line 2') == 1, msg

def test_data_26_taskspec_no_languages():
    _raises(lambda: D.TaskSpec('t', D.get_task('arc_easy').local, languages=()), ValueError, "task 't'", 'languages must be a non-empty tuple')

def test_data_27_every_record_invalid(tmp_path):
    r = _root(tmp_path, 'arc_easy.jsonl', ''.join(json.dumps({"question": "x", "answers": ["a", "b"]}) + '\n' for _ in range(3)))
    _raises(lambda: D.load_task('arc_easy', r, source='local'), ValueError, 'arc_easy', 'every source record is invalid (3)', "missing field 'query'")

# ---------------------------------------------------------------- scoring
def _item(**kw): return D.MCItem(**(dict(id='a/1', question='q', choices=['x', 'y'], answer=0, task='t') | kw))
def _rec(**kw): return S.make_record(_item(), 'letter', S.Evidence(np.array([0.3, 0.1]), None, None), 'plain', 0).to_dict() | kw

def test_scor_01_record_missing_fields():
    d = {k: v for k, v in _rec().items() if k not in ('pred', 'conf')}
    _raises(lambda: S.MCRecord.from_dict(d), ValueError, "record 'a/1'", "lacks field(s) ['pred', 'conf']")
def test_scor_02_record_not_a_dict(): _raises(lambda: S.MCRecord.from_dict(['scores']), TypeError, 'expected a dict', 'list')
def test_scor_03_rescore_unknown_method(): _raises(lambda: S.rescore(_rec(), 'bogus'), ValueError, 'method must be one of', "'bogus'")
def test_scor_04_record_of_unknown_method(): _raises(lambda: S.rescore(_rec(method='bogus'), 'letter'), ValueError, 'method must be one of', "'bogus'")
def test_scor_05_rescore_other_request(): _raises(lambda: S.rescore(_rec(), 'option'), ValueError, "cannot be rescored as 'option'")
def test_scor_06_rescore_without_evidence():
    _raises(lambda: S.rescore({k: v for k, v in _rec().items() if k != 'loglik'}, 'letter'), ValueError, "record 'a/1'", 'no evidence')

def test_scor_07_evidence_of_wrong_length():
    _raises(lambda: S.make_record(_item(choices=['x', 'y', 'z', 'w'], answer=3), 'letter', S.Evidence(np.array([0., 1., 2.]), None, None), 'plain', 0),
            ValueError, "item 'a/1'", 'shape (3,) for 4 choices')

def test_scor_08_nan_evidence():
    _raises(lambda: S.make_record(_item(), 'letter', S.Evidence(np.array([np.nan, 1.]), None, None), 'plain', 0), ValueError, "item 'a/1'", 'NaN')

def test_scor_09_minus_inf_option():
    r = S.make_record(_item(answer=1), 'letter', S.Evidence(np.array([-np.inf, 1.]), None, None), 'plain', 0)
    assert r.probs == [0.0, 1.0] and r.pred == 1 and r.correct and r.conf == 1.0

def _two_methods():
    a = _rec()
    b = S.make_record(_item(id='a/2'), 'option', S.Evidence(np.array([-3., -2.]), np.array([1, 2]), np.array([1, 1])), 'plain', 0).to_dict()
    return [a, b]
def test_scor_10_stack_probs_mixed_methods(): _raises(lambda: S.stack_probs(_two_methods()), ValueError, 'several methods', "'letter', 'option'")
def test_scor_11_record_logits_mixed_methods(): _raises(lambda: S.record_logits(_two_methods()), ValueError, 'several methods')
def test_scor_12_no_records(): _raises(lambda: S.stack_probs([]), ValueError, 'no records')
def test_scor_13_method_none(): _raises(lambda: S.get_method(None), ValueError, 'method must be one of')
def test_scor_14_method_registered_twice(): _raises(lambda: S.register_method(S.Method('letter', 'letter', lambda e: e.loglik)), ValueError, "'letter' is already registered")
def test_scor_15_all_minus_inf():
    _raises(lambda: S.make_record(_item(), 'letter', S.Evidence(np.array([-np.inf, -np.inf]), None, None), 'plain', 0), ValueError, 'all -inf')

def test_scor_16_record_probs_inconsistent():
    _raises(lambda: S.MCRecord.from_dict(_rec(probs=[0.9, 0.1])), ValueError, "record 'a/1'", 'not the softmax of scores')
    _raises(lambda: S.MCRecord.from_dict(_rec(correct=False)), ValueError, "record 'a/1'", 'correct=False')
    _raises(lambda: S.MCRecord.from_dict(_rec(n_choices=3)), ValueError, "record 'a/1'", 'n_choices=3')

def test_scor_18_make_record_dict_missing_fields():
    _raises(lambda: S.make_record(dict(id='a/1', answer=0), 'letter', S.Evidence(np.array([0., 1.]), None, None), 'plain', 0),
            ValueError, "item 'a/1'", "lacks field(s) ['task', 'subject', 'language']")

def test_scor_19_record_round_trip_against_softmax():
    rng = _rng()
    for K in (2, 5):
        ll = rng.normal(size=K) * 3; ans = int(rng.integers(0, K))
        r = S.make_record(_item(choices=[str(k) for k in range(K)], answer=ans), 'letter', S.Evidence(ll, None, None), 'chat', 2)
        p = np.exp(ll - ll.max()); p /= p.sum()
        assert np.allclose(r.probs, p, rtol=1e-12) and r.pred == int(p.argmax()) and r.correct == (r.pred == ans)
        assert S.MCRecord.from_dict(json.loads(json.dumps(r.to_dict()))) == r

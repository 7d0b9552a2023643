"""Static checks of the repository: no machine paths in what is committed, the redesign's grep invariants (issue 12,
"Done when"), and the study driver of tools/experiments_gpu (its configs reproduce the saved studies, bad configs
fail clearly, a tiny study runs end to end on the CPU).

Needs neither ../shared nor a browser nor a GPU. Invariants that do not hold yet are `xfail(strict=True)`: when one
starts to hold, its test fails (XPASS) and the marker is to be removed.
"""
import io, json, os, re, subprocess, sys, tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU_TOOLS = ROOT/'tools'/'experiments_gpu'


def repo_files(*roots):
    "Files under `roots` that are or would be committed: tracked plus untracked-but-not-ignored (git), else every file."
    try:
        out = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '--', *roots],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.split('\n')
        files = sorted({ROOT/f for f in out if f})
    except (OSError, subprocess.CalledProcessError):
        files = sorted(p for r in roots for p in ([ROOT/r] if (ROOT/r).is_file() else (ROOT/r).rglob('*')))
    return [f for f in files if f.is_file() and '__pycache__' not in f.parts and '.ipynb_checkpoints' not in f.parts]


# ---- machine paths ------------------------------------------------------------------------------------------------

# An absolute path into a folder that differs between machines: a workspace, a home, a temporary or mounted folder,
# an install prefix; always with a component below it (a bare `/tmp` is the same everywhere). The look-behind skips
# URLs (`https://host/home/...`), relative paths (`nbs/tmp/x`), `~/...` and `$VAR/...`.
_ROOTS = r'work|root|home|tmp|var/tmp|var/folders|private|opt|mnt|media|scratch|data|srv|content|kaggle|Users|usr/local|usr/lib'
MACHINE_PATH = re.compile(rf'(?<![\w.~$%{{}}/\\-])/(?:{_ROOTS})/[\w.\-+@]+[^\s\'"`)\]}},;:<>|*]*'
                          r'|file:///\S+'                                          # a file URL is a path too
                          r'|\b[A-Za-z]:\\{1,2}(?:Users|Documents and Settings)\\{1,2}[^\s\'"]+')   # Windows homes
# (file, exact text) pairs that are allowed; keep it tiny, and say why for each
ALLOWED = {}


def _text_of(x): return ''.join(x) if isinstance(x, list) else (x if isinstance(x, str) else json.dumps(x))


def notebook_texts(nb:dict):
    "(where, text) of every cell's source and every textual output (images and other binary data are skipped)."
    for i, c in enumerate(nb['cells']):
        cid = c.get('id', '?')
        yield f'cell {i} (id {cid}, {c["cell_type"]}) source', _text_of(c['source'])
        for o in c.get('outputs', []):
            parts = [o.get('text', ''), o.get('traceback', [])]
            parts += [v for k, v in o.get('data', {}).items() if k.startswith('text/') or k.endswith('json')]
            for t in parts:
                if t: yield f'cell {i} (id {cid}) output', _text_of(t)


def machine_paths(files):
    "{file: [(where, path)]} of the machine paths in `files` (notebooks cell by cell, other text files line by line)."
    found = {}
    for f in files:
        try: text = f.read_text(encoding='utf-8')
        except UnicodeDecodeError: continue   # binary
        rel = f.relative_to(ROOT).as_posix()
        if f.suffix == '.ipynb': places = notebook_texts(json.loads(text))
        else: places = ((f'line {n}', l) for n, l in enumerate(text.splitlines(), 1))
        hits = [(w, m.group(0)) for w, t in places for m in MACHINE_PATH.finditer(t) if m.group(0) not in ALLOWED.get(rel, ())]
        if hits: found[rel] = hits
    return found


def _report(found): return '\n'.join(f'{f}: {w}: {p}' for f, hits in found.items() for w, p in hits)


FINDS = ['/work/main/lsnb/sft.py', "'/tmp/gemma-hf'", 'cd /root/out && ls', '/home/alice/x.py', 'PYTHONPATH=/tmp/site:$PWD',
         '(/opt/conda/lib/python3.11/site-packages/x.py)', 'file:///work/main/_docs/index.html', r'C:\Users\bob\lsnb',
         '/Users/bob/lsnb', '"/tmp/tmpgybxbwlx/out/summary.json"', '/usr/local/lib/python3.12/dist-packages/t.py']
IGNORES = ['https://github.com/home/tmp/work/x', 'nbs/tmp/results.json', '../shared/data/mmlu', '~/.cache/lsnb/models',
           '$HOME/.cache', 'model="/tmp"', 'a/work/b', 'results/gemma-3-270m', '/dev/null', '/usr/bin/env python',
           'https://lsnb.github.io/lsnb/kernel.html', 'split into N/V chunks', '`lsnb eval --out results/x`']


def test_machine_path_pattern():
    "The pattern finds machine paths in the forms they take in code and outputs, and leaves URLs and relative paths alone."
    assert [t for t in FINDS if not MACHINE_PATH.search(t)] == []
    assert [t for t in IGNORES if MACHINE_PATH.search(t)] == []


def test_no_machine_paths_in_sources_and_outputs():
    "Notebooks (sources and outputs), README.md, tools/ and lsnb/ name no path of the machine they were made on."
    files = [f for f in repo_files('nbs', 'README.md', 'tools', 'lsnb') if f.suffix == '.ipynb' or not f.is_relative_to(ROOT/'nbs')]
    found = machine_paths(files)
    assert not found, f'machine paths in {len(found)} file(s):\n' + _report(found)


def test_no_machine_paths_in_saved_results():
    "Saved results name no folder of the machine that made them (older provenance was rewritten to `<tmp>/name` etc.)."
    found = machine_paths([f for f in repo_files('nbs') if f.suffix == '.json'])
    assert not found, f'machine paths in {len(found)} file(s):\n' + _report(found)


# ---- the redesign's grep invariants -------------------------------------------------------------------------------

def python_code(path:Path)->str:
    "The code of a Python file without its comments (strings are kept: `getattr(transformers, 'AutoModel...')` counts)."
    src = path.read_text(encoding='utf-8')
    try: toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline) if t.type != tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError): return src
    return tokenize.untokenize(toks)


def grep(pattern, files)->dict:
    "{file: [matching lines]} of `pattern` in the code (comments dropped) of `files`."
    rx, out = re.compile(pattern), {}
    for f in files:
        lines = [l.strip() for l in python_code(f).splitlines() if rx.search(l)]
        if lines: out[f.relative_to(ROOT).as_posix()] = lines
    return out


LIB = [f for f in repo_files('lsnb') if f.suffix == '.py']
CODE = LIB + [f for f in repo_files('tools') if f.suffix == '.py']
MODELS = 'lsnb/models.py'
LOADING = r'AutoModelForCausalLM|\b\w*(?:ForCausalLM|LMHeadModel|AutoModel)\s*\.\s*(?:from_pretrained|from_config)\s*\('
PAD_FIX = r'\.pad_token(?:_id)?\s*=(?!=)'
DISPATCH = r'''\bmethod(?:['"]\])?\s*(?:==|!=)\s*['"]|(?<!for )\bmethod(?:['"]\])?\s+(?:not\s+)?in\s+[(\[{]\s*['"]'''


def test_grep_helpers():
    "The patterns find what they are for (and not a test of equality or a keyword argument)."
    assert re.search(LOADING, 'm = AutoModelForCausalLM.from_pretrained(p)') and re.search(LOADING, 'LlamaForCausalLM.from_config(c)')
    assert re.search(LOADING, 'GPT2LMHeadModel.from_pretrained(d)') and not re.search(LOADING, 'AutoTokenizer.from_pretrained(d)')
    assert re.search(PAD_FIX, 'tok.pad_token = tok.eos_token') and re.search(PAD_FIX, 'm.config.pad_token_id = 0')
    assert not re.search(PAD_FIX, 'if tok.pad_token_id == None:') and not re.search(PAD_FIX, 'dict(pad_token=pad)')
    assert re.search(DISPATCH, "if method == 'letter':") and re.search(DISPATCH, "if method in ('option', 'per_char'):")
    assert re.search(DISPATCH, "v = r['loglik'] if r['method'] == 'option' else r['x']") and re.search(DISPATCH, 'rec.method != "letter"')
    assert not re.search(DISPATCH, "for method in ('option', 'letter'):") and not re.search(DISPATCH, 'if method == m:')


def test_models_module_alone_loads_causal_lms():
    "`from_pretrained`/`from_config` of causal LMs and `AutoModelForCausalLM` only in lsnb/models.py (library and tools)."
    found = {f: l for f, l in grep(LOADING, CODE).items() if f != MODELS}
    assert not found, found


def test_models_module_alone_sets_the_pad_token():
    "`pad_token = ...` / `pad_token_id = ...` only in lsnb/models.py (library and tools)."
    found = {f: l for f, l in grep(PAD_FIX, CODE).items() if f != MODELS}
    assert not found, found


def test_training_arguments_built_once():
    "`TrainingArguments(` appears once in lsnb/."
    found = grep(r'\bTrainingArguments\s*\(', LIB)
    assert sum(len(v) for v in found.values()) == 1, found


def test_no_scoring_method_dispatch_outside_the_registry():
    "No `method == '...'` / `method in ('...')` outside lsnb/scoring.py."
    found = {f: l for f, l in grep(DISPATCH, CODE).items() if f != 'lsnb/scoring.py'}
    assert not found, found


# ---- the study driver (tools/experiments_gpu) ---------------------------------------------------------------------

@pytest.fixture(scope='module')
def studyfile():
    sys.path.insert(0, str(GPU_TOOLS))
    try:
        import studyfile, run_study, prep
        yield studyfile
    finally: sys.path.remove(str(GPU_TOOLS))


CONFIGS = sorted(GPU_TOOLS.glob('*.json'))


def test_there_are_study_configs(): assert {c.stem for c in CONFIGS} >= {'gemma-3-270m', 'smollm2-135m-instruct', 'gemma-3-270m-long'}


NOT_STARTED = {'gemma-3-270m-v2-dose', 'gemma-3-270m-v2-remedies', 'gemma-3-270m-v2-lang'}   # configs committed before their first run (pre-registered grids): no results folder yet
STARTED = [c for c in CONFIGS if c.stem not in NOT_STARTED]

def test_configs_not_started_are_the_declared_ones(studyfile):
    "Every config has its results folder, except the declared ones, which have none (a study that began is tested below)."
    have = {c.stem for c in CONFIGS if (ROOT/'nbs'/'experiments'/'results'/studyfile.load_config(c).name/'study.json').exists()}
    assert {c.stem for c in CONFIGS} - have == NOT_STARTED

@pytest.mark.parametrize('path', STARTED, ids=lambda p: p.name)
def test_config_reproduces_the_saved_study(studyfile, path):
    "Each committed config is the study saved in nbs/experiments/results/<name>/study.json: its config and its runs."
    from dataclasses import asdict
    s = studyfile.load_config(path)
    saved = json.loads((ROOT/'nbs'/'experiments'/'results'/s.name/'study.json').read_text())
    assert json.loads(json.dumps(asdict(s.cfg))) == studyfile.with_config_defaults(saved['config'])
    assert json.loads(json.dumps([asdict(r) for r in s.runs])) == [studyfile.with_run_defaults(r) for r in saved['runs']]
    assert studyfile.saved_study_diff(s, ROOT/'nbs'/'experiments'/'results'/s.name) == []
    assert s.load.get('gguf_file') and len(s.load.get('gguf_sha256', '')) == 64 and s.load.get('dtype') == 'float32'


def _bad(d, path, change):
    d = json.loads(json.dumps(d)); change(d); path.write_text(json.dumps(d)); return path


BAD_CONFIGS = [  # (change to a good config, what the error says)
    (lambda d: d['study'].update(lrr=1e-4), "study: unknown field(s) 'lrr'"),
    (lambda d: d['study'].update(sft_limit='25000'), 'study.sft_limit must be an integer'),
    (lambda d: d['study'].update(english={'arc_easy_20': 8}), "unknown task 'arc_easy_20'"),
    (lambda d: d['study'].update(english={'arc_easy': 0}), 'study.english.arc_easy must be a positive integer or null'),
    (lambda d: d['study'].update(name='a/b'), 'study.name must be a plain folder name'),
    (lambda d: d['runs'].append(dict(d['runs'][0])), 'duplicate run name(s) base'),
    (lambda d: d['runs'].append({'alpha': 0.1}), "runs[15]: missing field(s) 'name'"),
    (lambda d: d['runs'][1].update(alpha='0.1'), 'runs[1].alpha must be a number'),
    (lambda d: d.update(runs=[]), 'runs must be a non-empty list'),
    (lambda d: d['study'].update(multilingual_methods=['option_token', 'nope']), "study.multilingual_methods: method must be one of"),
    (lambda d: d['study'].update(multilingual_methods=['letter', 'letter']), 'study.multilingual_methods: StudyConfig.multilingual_methods: a method is repeated'),
    (lambda d: d.update(load={'gguf': 'x.gguf'}), "load: unknown field(s) 'gguf'"),
    (lambda d: d.update(load={'gguf_file': '/models/x.gguf'}), 'must be a file name'),
    (lambda d: d.update(extra=1), "unknown key(s) 'extra'"),
    (lambda d: d.pop('study'), "missing key 'study'"),
]


def test_bad_config_fails_clearly(studyfile, tmp_path):
    "Each bad config raises `ConfigError` naming the file, the entry and what is wrong."
    good = json.loads((GPU_TOOLS/'gemma-3-270m.json').read_text())
    studyfile.load_config(_bad(good, tmp_path/'good.json', lambda d: None))
    for change, msg in BAD_CONFIGS:
        with pytest.raises(studyfile.ConfigError, match=re.escape(msg)): studyfile.load_config(_bad(good, tmp_path/'bad.json', change))


def test_bad_json_and_missing_file(studyfile, tmp_path):
    (tmp_path/'x.json').write_text('{"study": {"name": "x",}}')
    with pytest.raises(studyfile.ConfigError, match=r'x\.json: not valid JSON \(.*line 1 column'): studyfile.load_config(tmp_path/'x.json')
    with pytest.raises(studyfile.ConfigError, match='config file not found'): studyfile.load_config(tmp_path/'nope.json')


def _driver(*args, cwd):
    return subprocess.run([sys.executable, str(GPU_TOOLS/'run_study.py'), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_driver_gpu_fraction_checked_first(tmp_path, monkeypatch):
    "run_study.py refuses a bad LSNB_GPU_FRACTION (carried_study.sh JOBS) before reading any config, naming it; exit status 2."
    for bad in ('0', '1.5', 'half', 'nan'):
        monkeypatch.setenv('LSNB_GPU_FRACTION', bad)
        r = _driver('--config', tmp_path/'nope.json', '--check', cwd=tmp_path)
        assert r.returncode == 2 and f"LSNB_GPU_FRACTION must be a number in (0, 1], got {bad!r}" in r.stderr, (bad, r.stderr)
    monkeypatch.setenv('LSNB_GPU_FRACTION', '0.49')
    r = _driver('--config', tmp_path/'nope.json', '--check', cwd=tmp_path)
    assert r.returncode == 2 and 'LSNB_GPU_FRACTION' not in r.stderr and 'nope.json' in r.stderr, r.stderr


IN_PROGRESS = {'gemma-3-270m-v2-lr': 19, 'gemma-3-270m-v2-dose': 12, 'gemma-3-270m-v2-remedies': 12, 'gemma-3-270m-v2-lang': 7}   # studies still being run across sessions: runs left (their notebooks say which)

def test_driver_check_of_the_saved_studies(studyfile, capsys):
    "`--check` on the committed configs and results: nothing to do, so no model is needed; exit status 0. Studies in progress have exactly the runs left that IN_PROGRESS says."
    import run_study
    left = {c: [r.name for r in studyfile.load_config(c).runs
                if not (ROOT/'nbs'/'experiments'/'results'/studyfile.load_config(c).name/'runs'/r.name/'run.json').exists()] for c in CONFIGS}
    assert {c.stem: len(v) for c, v in left.items() if v} == IN_PROGRESS
    done = [c for c in CONFIGS if not left[c]]
    assert run_study.main(['--config', *map(str, done), '--out', str(ROOT/'nbs'/'experiments'/'results'), '--check']) == 0
    out = capsys.readouterr().out
    for c in done: assert f'({c.name}): ' in out
    assert out.count('to do: none') == len(done), out


def test_driver_command_line_errors(tmp_path):
    "From the shell: a missing model file and a bad option are exit status 2 with the reason on stderr."
    r = _driver('--config', GPU_TOOLS/'gemma-3-270m.json', '--check', '--out', 'nowhere-yet', '--model-dir', 'nowhere', cwd=tmp_path)
    assert r.returncode == 2 and "GGUF file not found: 'gemma-3-270m-q4_k_m.gguf'" in r.stderr and 'pass --model-dir' in r.stderr, r.stderr
    r = _driver('--config', GPU_TOOLS/'gemma-3-270m.json', '--budget-s', '0', cwd=tmp_path)
    assert r.returncode == 2 and '--budget-s must be > 0' in r.stderr, r.stderr


def test_driver_refuses_another_study_in_a_results_folder(studyfile, tmp_path):
    import run_study
    d = json.loads((GPU_TOOLS/'gemma-3-270m.json').read_text()); d['study']['lr'] = 1e-3
    (tmp_path/'c.json').write_text(json.dumps(d))
    with pytest.raises(studyfile.ConfigError, match=re.escape('study.lr: saved 5e-05, config 0.001')):
        run_study.main(['--config', str(tmp_path/'c.json'), '--check', '--out', str(ROOT/'nbs'/'experiments'/'results')])


@pytest.fixture(scope='module')
def tiny_study(tmp_path_factory, studyfile):
    "A tiny causal LM saved to a folder, a few Alpaca records, and a study config over the packaged ARC-Easy sample."
    from lsnb.testing import tiny_tokenizer, tiny_model, alpaca_sample
    root = tmp_path_factory.mktemp('tiny_study')
    tok = tiny_tokenizer('chatml', chat=True)
    tiny_model(tok).save_pretrained(root/'model'); tok.save_pretrained(root/'model')
    (root/'alpaca.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in alpaca_sample(40)))
    cfg = dict(study=dict(name='tiny', model='model', sft_limit=20, heldout=6, max_length=128, batch_size=4, bf16=False,
                          english={'arc_easy_200': 6}, multilingual={}, eval_batch_size=8, token_rows=4),
               runs=[dict(name='base', alpha=None, multilingual=False), dict(name='sft-a0.1-s0', alpha=0.1, multilingual=False)],
               load=dict(dtype='float32'))
    (root/'tiny.json').write_text(json.dumps(cfg))
    return root


def test_tiny_study_end_to_end(tiny_study, studyfile, monkeypatch):
    "prep.py, then run_study.py on the prepared folder: both runs are made and recorded; a second call has nothing to do."
    import prep, run_study
    from lsnb.experiments import load_study
    monkeypatch.chdir(tiny_study)
    assert prep.main(['--config', 'tiny.json', '--out', 'prepared', '--sft-records', 'alpaca.jsonl']) == 0
    rec = json.loads((tiny_study/'prepared'/'tiny'/'prep.json').read_text())
    assert rec['rows']['train'] > 0 and rec['items'] == {'english': {'arc_easy_200': 6}, 'multilingual': {}}
    assert run_study.main(['--config', 'tiny.json', '--out', 'results', '--prepared', 'prepared']) == 0
    res = load_study(tiny_study/'results'/'tiny')
    assert set(res) == {'base', 'sft-a0.1-s0'} and res['base']['train'] is None and res['sft-a0.1-s0']['train']['steps'] > 0
    info = res['sft-a0.1-s0']['run_info']
    assert info['config'] == 'tiny.json' and info['prepared']['tokenizer_sha256'] == rec['tokenizer_sha256']
    assert not MACHINE_PATH.search(info['command']), info['command']
    assert set(res['base']['scores']) == {'option', 'letter'} and len(res['base']['scores']['option']['arc_easy_200']['ids']) == 6
    assert run_study.main(['--config', 'tiny.json', '--out', 'results', '--prepared', 'prepared']) == 0   # resumes: all done
    # a prepared folder made for other data, or with another tokenizer, is refused
    d = json.loads(Path('tiny.json').read_text()); d['study']['heldout'] = 7; Path('other.json').write_text(json.dumps(d))
    with pytest.raises(studyfile.ConfigError, match='prepared for other data.*study.heldout: prepared 6, config 7'):
        run_study.main(['--config', 'other.json', '--out', 'results2', '--prepared', 'prepared'])
    from lsnb.testing import tiny_tokenizer, tiny_model
    tok = tiny_tokenizer('chatml', chat=True, texts=['another corpus entirely, with other words in it. ' * 4])
    tiny_model(tok).save_pretrained('model2'); tok.save_pretrained('model2')
    d['study'].update(heldout=6, model='model2'); Path('other.json').write_text(json.dumps(d))
    with pytest.raises(studyfile.ConfigError, match='tokenised with another tokenizer'):
        run_study.main(['--config', 'other.json', '--out', 'results2', '--prepared', 'prepared'])


def test_reliability_catalogue_is_tested():
    "Every case of the reliability catalogue (tests/reliability/catalogue_*.json) has its test, a unique id and a good verdict after."
    import re
    cats = sorted((ROOT/'tests'/'reliability').glob('catalogue_*.json'))
    assert cats, 'no reliability catalogue found'
    src = '\n'.join(p.read_text() for p in (ROOT/'tests'/'reliability').glob('test_*.py'))
    defined = set(re.findall(r'^def (test_\w+)', src, re.M))
    ids, verdicts = [], {'silent wrong number', 'unclear crash', 'lost data', 'clear error', 'right result'}
    for c in cats:
        for e in json.loads(c.read_text()):
            ids.append(e['id'])
            assert e['before'] in verdicts and e['after'] in ('clear error', 'right result'), (c.name, e['id'], e['before'], e['after'])
            prefix = 'test_' + e['id'].replace('-', '_')
            assert e['test'] in defined and e['test'].startswith(prefix), (c.name, e['id'], e['test'])
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f'duplicate catalogue ids: {dup}'


# ---- tools/test_nbs.py: the order it starts the notebooks in ------------------------------------------------------

def test_nbs_first_starts_the_named_notebooks_first():
    "`--first a,b` puts a and b at the head of the run, in that order, the others after them in nbdev's (sorted) order."
    run = lambda *a: subprocess.run([sys.executable, str(ROOT/'tools'/'test_nbs.py'), '--list', *a], cwd=ROOT, capture_output=True, text=True)
    plain, first = run(), run('--first', '06a_sft.ipynb,03c_kernel_fused.ipynb')
    assert plain.returncode == 0 and first.returncode == 0, plain.stderr + first.stderr
    names = lambda p: [l.strip() for l in p.stdout.splitlines() if l.startswith('  ') and l.strip().endswith('.ipynb')]
    a, b = names(plain), names(first)
    assert len(a) > 10 and sorted(a) == sorted(b), (a, b)
    assert [Path(x).name for x in b[:2]] == ['06a_sft.ipynb', '03c_kernel_fused.ipynb'], b[:3]
    assert b[2:] == [x for x in a if Path(x).name not in ('06a_sft.ipynb', '03c_kernel_fused.ipynb')]
    bad = run('--first', 'nosuch.ipynb')
    assert bad.returncode == 2 and '--first: no notebook named nosuch.ipynb' in bad.stderr, bad.stderr


def test_carried_study_fails_fast(tmp_path):
    "tools/experiments_gpu/carried_study.sh stops at once, exit 2, with a line naming what is missing (not after its time limit)."
    sh = ROOT/'tools'/'experiments_gpu'/'carried_study.sh'
    cfg = ROOT/'tools'/'experiments_gpu'/'gemma-3-270m-vd.json'
    def run(*a, out=True, jobs=None):
        env = {k: v for k, v in os.environ.items() if k not in ('OUT', 'JOBS')}
        if out: env['OUT'] = str(tmp_path/'out')
        if jobs is not None: env['JOBS'] = jobs
        return subprocess.run(['bash', str(sh), *map(str, a)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    for args, kw, words in [((), {}, 'usage: LIMIT=560 carried_study.sh WORK CONFIG'),
                            ((tmp_path, cfg), dict(out=False), '$OUT is not set'),
                            ((tmp_path, tmp_path/'nope.json'), {}, 'no config file'),
                            ((tmp_path, cfg), {}, 'wheels lacks the transformers or gguf wheel'),
                            ((tmp_path, cfg), dict(jobs='two'), "JOBS must be a whole number >= 1, got 'two'"),
                            ((tmp_path, cfg), dict(jobs='0'), "JOBS must be a whole number >= 1, got '0'")]:
        r = run(*args, **kw)
        assert r.returncode == 2 and words in r.stderr, (args, r.returncode, r.stderr)
    (tmp_path/'wheels').mkdir()
    for n in ('transformers-5.24.0-py3-none-any.whl', 'gguf-0.19.0-py3-none-any.whl'): (tmp_path/'wheels'/n).write_bytes(b'not a wheel')
    r = run(tmp_path, cfg)
    assert r.returncode == 2 and 'pip install of the carried wheels failed' in r.stderr, r.stderr


def test_carry_prep_checks_before_downloading(tmp_path):
    "tools/experiments_gpu/carry_prep.py refuses a missing file or a bad config before any download, naming it."
    tool = ROOT/'tools'/'experiments_gpu'/'carry_prep.py'
    cfg = ROOT/'tools'/'experiments_gpu'/'gemma-3-270m-vd.json'
    recs = tmp_path/'recs.json.gz'; recs.write_bytes(b'')
    bad = tmp_path/'bad.json'; bad.write_text(json.dumps({'study': {'name': 'x', 'nosuchfield': 1}, 'runs': []}))
    run = lambda *a: subprocess.run([sys.executable, str(tool), *map(str, a)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    common = ['--out', tmp_path/'carry', '--data-root', tmp_path, '--sft-records', recs]
    for args, words in [(['--config', tmp_path/'nope.json', *common], '--config: no such file'),
                        (['--config', cfg, *common[:-1], tmp_path/'nope.gz'], '--sft-records: no such file'),
                        (['--config', cfg, *common, '--subvocabs', tmp_path/'nope.npz'], '--subvocabs: no such file'),
                        (['--config', bad, *common], 'bad.json')]:
        r = run(*args)
        assert r.returncode == 2 and words in r.stderr, (args, r.returncode, r.stderr[-800:])
    assert not (tmp_path/'carry').exists()   # nothing laid out, nothing downloaded

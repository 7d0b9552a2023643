"tools/experiments_gpu/travel.py: slim the working tree for a device call and put it back, on a throwaway git repository."
import hashlib, os, shutil, subprocess, sys
from pathlib import Path
import pytest

TOOL = Path(__file__).resolve().parents[1]/'tools'/'experiments_gpu'/'travel.py'


def _tree(root):
    "sha256 of every file under root, by relative path (.git left out)."
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob('*') if p.is_file() and '.git' not in p.relative_to(root).parts}


@pytest.fixture
def repo(tmp_path):
    "A git repository shaped like this one: heavy score files under nbs/, two runs of a study, tests, lsnb and tools."
    r = tmp_path/'repo'
    rng = os.urandom
    files = {'nbs/experiments/results/s1/study.json': b'{"config": 1}', 'nbs/experiments/results/s1/runs/a/run.json': b'{"a": 1}',
             'nbs/experiments/results/s1/runs/a/scores.npz': rng(300_000), 'nbs/experiments/results/s1/runs/b/run.json': b'{"b": 2}',
             'nbs/experiments/results/s1/runs/half/scores.npz': rng(1000),   # a run without run.json: not done, not kept
             'nbs/experiments/results/s2/study.json': b'{}', 'nbs/x.ipynb': rng(200_000), 'tests/test_x.py': b'pass\n',
             'lsnb/core.py': b'x = 1\n', 'README.md': b'readme\n'}
    for n, b in files.items(): (r/n).parent.mkdir(parents=True, exist_ok=True); (r/n).write_bytes(b)
    (r/'tools'/'experiments_gpu').mkdir(parents=True); shutil.copy(TOOL, r/'tools'/'experiments_gpu'/'travel.py')
    (r/'.gitignore').write_text('.carry/\n'); (r/'.carry').mkdir(); (r/'.carry'/'big.whl').write_bytes(rng(500_000))
    for c in (['init', '-q'], ['add', '-A'], ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'x']):
        subprocess.run(['git', '-C', str(r), *c], check=True)
    (r/'notes.txt').write_text('untracked, not ignored: it travels\n')
    return r


def _run(repo, *args, script=None):
    return subprocess.run([sys.executable, str(script or repo/'tools'/'experiments_gpu'/'travel.py'), *map(str, args)],
                          capture_output=True, text=True, cwd=repo)


def test_slim_keep_and_restore(repo, tmp_path):
    "slim --keep: only the study's study.json and run.json files stay under nbs/, the size drops; restore gives the tree back byte for byte."
    before = _tree(repo)
    r = _run(repo, 'size'); assert r.returncode == 0 and 'travels: 0.5 MiB' in r.stdout, r.stdout   # ignored .carry does not travel
    hold = tmp_path/'hold'
    r = _run(repo, 'slim', hold, '--keep', 's1'); assert r.returncode == 0, r.stderr
    left = sorted(str(p.relative_to(repo)) for p in (repo/'nbs').rglob('*') if p.is_file())
    assert left == ['nbs/experiments/results/s1/runs/a/run.json', 'nbs/experiments/results/s1/runs/b/run.json', 'nbs/experiments/results/s1/study.json']
    assert not (repo/'tests').exists() and (repo/'lsnb'/'core.py').is_file() and 'travels: 0.0 MiB' in r.stdout
    r = _run(repo, 'restore', hold); assert r.returncode == 0 and 'git status clean' in r.stdout, r.stderr
    assert _tree(repo) == before and not hold.exists()


def test_slim_bare_restores_from_hold(repo, tmp_path):
    "--bare moves lsnb/ and tools/ too, this script with them; restore runs from HOLD's copy and finds the repository in travel.json."
    before, hold = _tree(repo), tmp_path/'h'
    r = _run(repo, 'slim', hold, '--bare'); assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in repo.iterdir() if p.name != '.git') == ['.carry', '.gitignore', 'README.md', 'notes.txt']
    r = _run(repo, 'restore', hold, script=hold/'tools'/'experiments_gpu'/'travel.py'); assert r.returncode == 0, r.stderr
    assert _tree(repo) == before


@pytest.mark.parametrize('args, words', [
    (['--keep', 'nope'], '--keep nope: no nbs/experiments/results/nope/study.json'),
    (['--keep', 's1', '--bare'], 'not both'),
])
def test_slim_refuses_before_moving(repo, tmp_path, args, words):
    "A bad --keep or --keep with --bare: exit 2 naming the problem, nothing moved, HOLD not made."
    before, hold = _tree(repo), tmp_path/'hold'
    r = _run(repo, 'slim', hold, *args)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert _tree(repo) == before and not hold.exists()


def test_hold_checks(repo, tmp_path):
    "HOLD inside the repository, HOLD not empty, restore from a folder slim did not make: exit 2, nothing changed."
    before = _tree(repo)
    r = _run(repo, 'slim', repo/'inside'); assert r.returncode == 2 and 'inside the repository' in r.stderr
    full = tmp_path/'full'; full.mkdir(); (full/'x').write_text('x')
    r = _run(repo, 'slim', full); assert r.returncode == 2 and 'not an empty folder' in r.stderr
    r = _run(repo, 'restore', full); assert r.returncode == 2 and 'no travel.json' in r.stderr
    assert _tree(repo) == before


def test_restore_sees_a_lost_tracked_file(repo, tmp_path):
    "A tracked file deleted from HOLD while slimmed: restore puts the rest back and fails, naming it."
    hold = tmp_path/'hold'
    assert _run(repo, 'slim', hold).returncode == 0
    (hold/'tests'/'test_x.py').unlink()
    r = _run(repo, 'restore', hold)
    assert r.returncode == 2 and 'tests/test_x.py' in r.stderr, r.stderr

"""Helpers shared by the reliability tests (imported by name: pytest puts this folder on `sys.path`)."""
import json
import pytest


def _raises(f, exc, *words):
    "Call `f`: it must raise `exc` whose message contains every one of `words`; returns the message."
    with pytest.raises(exc) as e: f()
    for w in words: assert w in str(e.value), (w, str(e.value))
    return str(e.value)


VERDICTS = {'silent wrong number', 'unclear crash', 'lost data', 'clear error', 'right result'}

def check_catalogue(path, names):
    "Every entry of the catalogue file `path` is well formed, ends in a clear error or the right result, and names a test in `names`."
    cat = json.loads(path.read_text())
    tests = {n for n in names if n.startswith('test_')}
    assert len({c['id'] for c in cat}) == len(cat)
    for c in cat:
        assert set(c) == {'id', 'area', 'input', 'before', 'after', 'test'} and c['before'] in VERDICTS, c
        assert c['after'] in ('clear error', 'right result'), c
        assert c['test'] in tests and c['test'].startswith('test_' + c['id'].replace('-', '_')), c

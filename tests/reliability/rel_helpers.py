"""Helpers shared by the reliability tests (imported by name: pytest puts this folder on `sys.path`)."""
import pytest


def _raises(f, exc, *words):
    "Call `f`: it must raise `exc` whose message contains every one of `words`; returns the message."
    with pytest.raises(exc) as e: f()
    for w in words: assert w in str(e.value), (w, str(e.value))
    return str(e.value)

"""lsnb.vocab through lsnb.experiments' own `train_run`, `score_run` and `token_stats`, wired as proposed for issue 14
(`vocab_head` on the freshly loaded model, `vocab_rows` on the training rows): a tiny model trained with a V′ and a
bottleneck scores exactly like a plain model whose head is the materialised W_eff = W[V′] A B with the columns outside
V′ masked by a bias, and the token statistics are those of the V′-token softmax."""
import copy, warnings

import numpy as np
import pytest
import torch

from lsnb.data import MCItem
from lsnb.experiments import RunSpec, StudyConfig, score_run, sft_rows, token_stats, train_run
from lsnb.models import find_output_head
from lsnb.testing import alpaca_sample, tiny_causal_lm, tiny_tokenizer
from lsnb.vocab import (SubVocab, VocabHead, choose_subvocab, mask_rows, remap_rows, remove_vocab_head, required_ids,
                        sft_target_counts, vocab_head, vocab_rows)

pytestmark = pytest.mark.filterwarnings('ignore::UserWarning')


def _dense_reference(model):
    "A plain copy of `model` whose head is nn.Linear with weight W[V′] A B scattered into V rows and bias -1e30 outside V′."
    vh = find_output_head(model).module
    ref = copy.deepcopy(model); remove_vocab_head(ref)
    W = vh.base.weight.detach()
    if vh.A is not None: W = W @ vh.A.detach() @ vh.B.detach()
    lin = torch.nn.Linear(W.shape[1], vh.V, bias=True)
    with torch.no_grad():
        lin.weight.copy_(W); lin.bias.fill_(0.0)
        if vh.sub is not None:
            out = torch.ones(vh.V, dtype=torch.bool); out[vh.sub.ids] = False
            lin.weight[out] = 0.0; lin.bias[out] = -1e30
    ref.lm_head = lin
    return ref


@pytest.mark.parametrize('size,rank', [(120, None), (None, 6), (200, 4)])
def test_study_run_with_vocab_head(tmp_path, size, rank):
    rng = np.random.default_rng()
    tok = tiny_tokenizer('chatml', chat=True); V = len(tok)
    cfg = StudyConfig(sft_limit=20, heldout=8, max_length=64, batch_size=4, lr=1e-3, bf16=False, methods=('option', 'letter'),
                      english={'t': None}, multilingual={}, data_seed=int(rng.integers(100)))
    items = {'english': {'t': [MCItem(f'q{i}', f'Which is it {i}?', [f'plants {i}', 'water', 'the sun'], i % 3) for i in range(4)]},
             'multilingual': {}}
    recs = alpaca_sample(40)
    counts, held = sft_target_counts(cfg, tok, recs, V)
    sub = choose_subvocab(counts, required_ids(tok, items, cfg.template), size) if size else None
    model = tiny_causal_lm('llama', V, 16, seed=int(rng.integers(100)), tie_word_embeddings=True, pad_token_id=tok.pad_token_id)
    spec = RunSpec('sft-vd', 0.1, 0, multilingual=False)
    train_rows, held_rows = sft_rows(cfg, tok, recs)
    assert held_rows == held
    # --- the lines proposed for lsnb.experiments (run_study after load_start, train_run before the trainer) ---
    vh = vocab_head(model, sub, rank)
    rows, info = vocab_rows(model, train_rows)
    summary = train_run(model, tok, rows, spec, cfg, tmp_path/'tr')
    # ---
    assert isinstance(vh, VocabHead) and summary['steps'] >= 1
    n_targets = sum(int((torch.tensor(r['labels']) != -100).sum()) for r in train_rows)
    kept = 0 if sub is None else sum(int((sub.lookup[torch.tensor(r['labels'])[torch.tensor(r['labels']) != -100]] >= 0).sum()) for r in train_rows)
    assert info['dropped_targets'] == (0 if sub is None else n_targets - kept) and info['rank'] == rank
    assert summary['target_tokens'] <= n_targets
    ref = _dense_reference(model)
    got, want = score_run(model, tok, items, cfg, spec), score_run(ref, tok, items, cfg, spec)
    for method in cfg.methods:
        np.testing.assert_allclose(got[method]['t']['logits'], want[method]['t']['logits'], rtol=1e-4, atol=1e-4)
    rows_eval = mask_rows(held, sub) if sub is not None else held
    st, st_ref = token_stats(model, rows_eval), token_stats(ref, rows_eval)
    for k in ('mean_confidence', 'accuracy', 'ece', 'mean_entropy'):
        assert st[k] == pytest.approx(st_ref[k], rel=1e-4, abs=1e-6), k
    assert st['vocab_size'] == (size or V) and st['n_tokens'] == st_ref['n_tokens']


def test_rows_helpers():
    rng = np.random.default_rng()
    V = 50; sub = choose_subvocab(rng.integers(0, 5, V), [1, 2], 20)
    rows = [dict(input_ids=list(range(8)), labels=[-100] + rng.integers(0, V, 7).tolist(), position_ids=list(range(8)))]
    out, k, n = remap_rows(rows, sub)
    ref = [-100 if t == -100 or int(sub.lookup[t]) < 0 else int(sub.lookup[t]) for t in rows[0]['labels']]
    assert out[0]['labels'] == ref and out[0]['input_ids'] == rows[0]['input_ids'] and n == 7
    assert k == sum(t != -100 and int(sub.lookup[t]) < 0 for t in rows[0]['labels'])
    m = mask_rows(rows, sub)[0]['labels']
    assert m == [t if t != -100 and int(sub.lookup[t]) >= 0 else -100 for t in rows[0]['labels']]
    plain = tiny_causal_lm('llama', V, 8)
    assert vocab_rows(plain, rows) == (rows, None)
    with pytest.raises(ValueError, match=r'targets must be in \[0, 50\)'):
        remap_rows([dict(input_ids=[0, 1], labels=[-100, 77])], sub)
    with pytest.raises(ValueError, match='sub must be a SubVocab or None'):
        vocab_head(plain, torch.arange(5))
    assert isinstance(sub, SubVocab)

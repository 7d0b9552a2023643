# prepare the carried inputs of the GPU study: items (all tasks), packed SFT rows (gemma tokenizer)
import sys, time, numpy as np, torch
from pathlib import Path
from transformers import AutoTokenizer
from lsnb.experiments import StudyConfig, study_items, save_items, sft_rows
from lsnb.sft_data import read_records
D = Path('/work/main/.whl_y0')
cfg = StudyConfig(name='gemma-3-270m-long', sft_limit=51000, heldout=1000, epochs=2.0, eval_batch_size=128, data_root='/work/shared/data')
def pack_rows(rows, L):
    R = len(rows); ids = np.zeros((R, L), np.int32); lab = np.full((R, L), -100, np.int32); pos = np.zeros((R, L), np.int16); n = np.zeros(R, np.int32)
    for i, r in enumerate(rows):
        k = len(r['input_ids']); n[i] = k; ids[i, :k] = r['input_ids']; lab[i, :k] = r['labels']; pos[i, :k] = r['position_ids']
    return dict(ids=ids, lab=lab, pos=pos, n=n)
for name, tokdir in [('gemma', '/root/.cache/lsnb/models/gemma-3-270m-q4_k_m-a5fd3b62230aa5ec')] + ([('smollm2', sys.argv[1])] if len(sys.argv) > 1 else []):
    tok = AutoTokenizer.from_pretrained(tokdir)
    if tok.pad_token_id is None: tok.pad_token = tok.eos_token
    t = time.time(); tr, held = sft_rows(cfg, tok, read_records('/work/shared/data/alpaca/alpaca_data.json.gz'))
    a, b = pack_rows(tr, cfg.max_length), pack_rows(held, cfg.max_length)
    np.savez_compressed(D/f'rows_{name}_long.npz', **{f'train_{k}': v for k, v in a.items()}, **{f'held_{k}': v for k, v in b.items()})
    print(name, len(tr), len(held), int(a['n'].sum()), f'{time.time()-t:.0f}s')

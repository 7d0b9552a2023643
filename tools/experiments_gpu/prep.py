"""Prepare the data of one or more studies for a machine that has no copy of it (and no Hub access).

    python tools/experiments_gpu/prep.py --config tools/experiments_gpu/gemma-3-270m.json --out PREPARED \\
        --data-root DATA --sft-records DATA/alpaca/alpaca_data.json.gz --model-dir GGUF_DIR

For each config it writes PREPARED/<study name>/: the evaluation items (`lsnb.experiments.study_items`), the packed
SFT rows (`lsnb.experiments.sft_rows`, tokenised by the study's own tokenizer, loaded through
`lsnb.models.load_tokenizer`) and prep.json, which `run_study.py --prepared PREPARED` checks against the config and
the tokenizer it loads there. A folder already prepared for the same data is left alone (--force redoes it).
"""
from __future__ import annotations
import argparse, json, sys, time
from dataclasses import replace
from pathlib import Path

from studyfile import (ConfigError, load_config, load_kwargs, model_source, check_prepared, prep_record,
                       write_prep_record, write_rows, ITEM_FIELDS)


def file_sha256(path):
    from lsnb.models import file_sha256 as f
    return f(path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', nargs='+', required=True, type=Path, help='study config file(s) (JSON; see studyfile.py)')
    p.add_argument('--out', required=True, type=Path, help='parent folder of the prepared folders (one per study)')
    p.add_argument('--data-root', help='local data folder of the evaluation tasks (default: the study\'s data_root, else $LSNB_DATA)')
    p.add_argument('--sft-records', type=Path, help="a local file of the SFT records instead of the study's sft_data (e.g. a copy of Alpaca)")
    p.add_argument('--model-dir', type=Path, help="folder holding the configs' GGUF files (load.gguf_file)")
    p.add_argument('--cache-dir', type=Path, help='where converted GGUF models are cached (default: lsnb.models.default_cache_dir())')
    p.add_argument('--force', action='store_true', help='prepare again even if the folder was prepared for the same data')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from lsnb.core import git_commit
    from lsnb.experiments import study_items, save_items, sft_rows
    from lsnb.sft_data import read_records
    from lsnb.models import load_tokenizer
    studies = [load_config(c) for c in args.config]   # every config is checked before anything is loaded
    items_cache, tok_cache, records = {}, {}, None
    if args.sft_records is not None and not args.sft_records.is_file(): raise ConfigError(f'--sft-records: no such file {args.sft_records}')
    for s in studies:
        folder = args.out/s.name
        if not args.force:
            try: check_prepared(folder, s); print(f'{s.name}: {folder} is already prepared for this data (--force redoes it)'); continue
            except ConfigError: pass
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        key = json.dumps({k: getattr(s.cfg, k) for k in ITEM_FIELDS})
        if key not in items_cache:
            items_cache[key] = study_items(replace(s.cfg, data_root=args.data_root) if args.data_root else s.cfg)
        items = items_cache[key]
        save_items(folder/'items.jsonl.gz', items)
        counts = {p: {t: len(v) for t, v in d.items()} for p, d in items.items()}
        print(f'{s.name}: items {counts} ({time.time() - t0:.0f} s)', flush=True)
        kw = load_kwargs(s, args.model_dir, args.cache_dir, device='cpu')
        k = json.dumps(kw, default=str)
        if k not in tok_cache:   # the tokenizer as the GPU machine will load it (same conversion, guard and padding token)
            tok_cache[k] = load_tokenizer(kw['model'], kw.get('gguf_file'), cache_dir=kw['cache_dir'], check=kw['check'])
        tok = tok_cache[k]
        if records is None or args.sft_records is None:
            records = read_records(args.sft_records if args.sft_records is not None else s.cfg.sft_data)
        t0 = time.time()
        train, held = sft_rows(s.cfg, tok, records)
        write_rows(folder/'rows.npz', train, held)
        n_tok = sum(len(r['input_ids']) for r in train)
        print(f'{s.name}: {len(train)} training rows ({n_tok} tokens), {len(held)} held-out rows ({time.time() - t0:.0f} s)', flush=True)
        _, gguf_sha = model_source(s, args.model_dir)
        write_prep_record(folder, prep_record(
            s, tok, config=s.path.name, config_sha256=s.sha256, commit=git_commit(Path(__file__).parent),
            time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()), gguf_sha256=gguf_sha,
            sft_records=dict(name=(args.sft_records.name if args.sft_records else s.cfg.sft_data), n=len(records),
                             sha256=file_sha256(args.sft_records) if args.sft_records else None),
            items=counts, rows=dict(train=len(train), held=len(held), train_tokens=n_tok),
            items_sha256=file_sha256(folder/'items.jsonl.gz'), rows_sha256=file_sha256(folder/'rows.npz')))
    return 0


if __name__ == '__main__':
    try: sys.exit(main())
    except ConfigError as e:
        print(f'prep.py: error: {e}', file=sys.stderr); sys.exit(2)

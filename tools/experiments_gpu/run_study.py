"""Run (or resume) the studies of one or more config files with `lsnb.experiments.run_study`.

    python tools/experiments_gpu/run_study.py --config tools/experiments_gpu/gemma-3-270m.json \\
        --out RESULTS [--prepared PREPARED] [--model-dir GGUF_DIR] [--budget-s 1800] [--runs base,sft-a0-s0] [--check]

Each study goes to RESULTS/<study name>/ (study.json, runs/NAME/); runs already there are skipped, so the same
command continues an interrupted study. The studies run in the order given, and a study starts only when the ones
before it are complete. The base model is loaded by `lsnb.models.load_model` (from the GGUF file the config names,
found in --model-dir, or from the study's model id/folder). The items and SFT rows come from a folder written by
prep.py (--prepared), else they are made here from --data-root / $LSNB_DATA and --sft-records or the study's sft_data.
Exit status: 0 when every selected run is done, 3 when the budget stopped it first (call it again), 2 on a bad
config or command line.
"""
from __future__ import annotations
import argparse, os, sys, time, hashlib
from dataclasses import replace
from pathlib import Path

from studyfile import ConfigError, load_config, select_runs, saved_study_diff, check_prepared, load_kwargs, model_source, read_rows

SAVED = Path(__file__).resolve().parents[2]/'nbs'/'experiments'/'results'   # the saved studies


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', nargs='+', required=True, type=Path, help='study config file(s) (JSON; see studyfile.py), run in this order')
    p.add_argument('--out', type=Path, default=SAVED,
                   help="parent folder of the results folders, one per study (default: the repository's nbs/experiments/results)")
    p.add_argument('--prepared', type=Path, help='parent folder of the folders written by prep.py (default: make the data here)')
    p.add_argument('--data-root', help="without --prepared: local data folder of the tasks (default: the study's data_root, else $LSNB_DATA)")
    p.add_argument('--items', type=Path, help="without --prepared: the evaluation items as a file of lsnb.experiments.save_items (instead of --data-root)")
    p.add_argument('--sft-records', type=Path, help="without --prepared: a local file of the SFT records instead of the study's sft_data")
    p.add_argument('--model-dir', type=Path, help="folder holding the configs' GGUF files (load.gguf_file)")
    p.add_argument('--cache-dir', type=Path, help='where converted GGUF models are cached (default: lsnb.models.default_cache_dir())')
    p.add_argument('--subvocabs', type=Path, help="the study's sub-vocabularies V′ for runs with a vocab_size (a file of lsnb.vocab.save_subvocabs, e.g. from vd_predictions.py)")
    p.add_argument('--device', help='device of the model (default: CUDA if available)')
    p.add_argument('--budget-s', type=float, help='stop before a run that would not finish within this many seconds of the start')
    p.add_argument('--runs', type=lambda s: [x for x in s.split(',') if x], help='only these runs (comma-separated; one config only)')
    p.add_argument('--check', action='store_true', help='check the configs, the files and the results folders, print the plan, run nothing')
    p.add_argument('--progress', action='store_true', help='progress bars')
    args = p.parse_args(argv)
    if args.runs and len(args.config) > 1: p.error('--runs needs exactly one --config')
    if args.prepared and (args.data_root or args.sft_records or args.items): p.error('--data-root, --items and --sft-records make the data here: not with --prepared')
    if args.items and args.data_root: p.error('--items replaces --data-root: give one of them')
    if args.budget_s is not None and not args.budget_s > 0: p.error(f'--budget-s must be > 0, got {args.budget_s}')
    return args


class BaseLoader:
    "`load_base` for `run_study`: fresh base weights by `lsnb.models.load_model`; the tokenizer can be had first (`peek`)."
    def __init__(self, kwargs): self.kwargs, self.spare = kwargs, None
    def peek(self):
        "The tokenizer, loading the model once; that untouched model is what the next call returns."
        if self.spare is None: self.spare = self()
        return self.spare[1]
    def __call__(self):
        from lsnb.models import load_model
        if self.spare is not None:
            out, self.spare = self.spare, None
            return out
        return load_model(**self.kwargs)


def _command(args):
    "The command line, with the machine's paths replaced by their last component (it is recorded in every run.json)."
    parts = ['tools/experiments_gpu/run_study.py', '--config'] + [c.name for c in args.config]
    for opt in ('out', 'prepared', 'data_root', 'items', 'sft_records', 'model_dir', 'cache_dir', 'subvocabs'):
        v = getattr(args, opt)
        if v is not None: parts += [f'--{opt.replace("_", "-")}', f'.../{Path(v).name}']
    if args.budget_s is not None: parts += ['--budget-s', f'{args.budget_s:g}']
    if args.runs: parts += ['--runs', ','.join(args.runs)]
    return ' '.join(parts)


def _code_sha256():
    import lsnb
    root = Path(lsnb.__file__).parent
    # every module of the package (the restricted softmax, the fused kernel and the configs run too), not a chosen few
    return {f'lsnb/{f.name}': hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(root.glob('*.py')) if f.name != '_modidx.py'}


def plan(args):
    "Every study of the command, checked as far as possible without loading a model: [(study, runs, out, todo, gguf sha)]."
    studies = [load_config(c) for c in args.config]
    names = [s.name for s in studies]
    if len(set(names)) != len(names): raise ConfigError(f'two configs name the same study: {names}')
    out = []
    for s in studies:
        runs, d = select_runs(s, args.runs), args.out/s.name
        probs = saved_study_diff(s, d)
        if probs: raise ConfigError(f'{d} holds a study that {s.path.name} does not describe: ' + '; '.join(probs))
        if args.prepared: check_prepared(args.prepared/s.name, s)
        if args.prepared:
            other = [r.name for r in runs if r.data_seed not in (None, s.cfg.data_seed)]
            if other: raise ConfigError(f'{s.path.name}: run(s) {", ".join(other)} train on another SFT subset (data_seed): '
                                        'a prepared folder holds one subset; make the data on this machine (--data-root, --sft-records)')
        todo = [r.name for r in runs if not (d/'runs'/r.name/'run.json').exists()]
        _, sha = model_source(s, args.model_dir) if todo else (None, None)   # the GGUF file is there and is the one named
        out.append((s, runs, d, todo, sha))
    return out


def gpu_fraction():
    "$LSNB_GPU_FRACTION (carried_study.sh JOBS): the share of the GPU's memory this process may hold, or None; a bad value is a ConfigError."
    v = os.environ.get('LSNB_GPU_FRACTION')
    if not v: return None
    try: f = float(v)
    except ValueError: f = float('nan')
    if not 0 < f <= 1: raise ConfigError(f'LSNB_GPU_FRACTION must be a number in (0, 1], got {v!r}')
    return f


def main(argv=None):
    T0 = time.time()
    args = parse_args(argv)
    frac = gpu_fraction()   # before any work: a bad value fails here
    steps = plan(args)
    for s, runs, d, todo, sha in steps:
        print(f'{s.name} ({s.path.name}): {len(runs)} runs, {len(runs) - len(todo)} done in {d}; to do: {", ".join(todo) or "none"}')
    if args.check: return 0
    from lsnb.experiments import run_study, study_items, sft_rows, read_study_items
    subvocabs = None
    if args.subvocabs:   # read before any model loads: a bad file fails here
        from lsnb.vocab import load_subvocabs
        try: subvocabs, _ = load_subvocabs(args.subvocabs)
        except (FileNotFoundError, ValueError) as e: raise ConfigError(f'--subvocabs: {e}') from None
    for s, runs, d, todo, sha in steps:   # every run's V′ and rank, checked before any model loads
        from lsnb.vocab import check_vocab_spec
        for r in runs:
            try: check_vocab_spec(r.vocab_size, r.rank, subvocabs, f'{s.path.name}: run {r.name!r}')
            except ValueError as e: raise ConfigError(str(e)) from None
    for s, runs, d, todo, sha in steps:
        if not todo: continue
        left = None if args.budget_s is None else args.budget_s - (time.time() - T0)
        if left is not None and left <= 0:
            print(f'budget spent before {s.name}'); return 3
        loader = BaseLoader(load_kwargs(s, args.model_dir, args.cache_dir, args.device))
        info = dict(command=_command(args), config=s.path.name, config_sha256=s.sha256, code_sha256=_code_sha256(),
                    model_id=s.cfg.model,
                    model_source=s.load.get('gguf_file') or (Path(s.cfg.model).name if Path(s.cfg.model).exists() else s.cfg.model))
        if sha: info['gguf_sha256'] = sha
        if args.subvocabs: info['subvocabs_sha256'] = hashlib.sha256(args.subvocabs.read_bytes()).hexdigest()
        if os.environ.get('LSNB_COMMIT'): info['commit'] = os.environ['LSNB_COMMIT']   # a copy of the repository without .git
        if os.environ.get('LSNB_JOBS'): info['jobs'] = int(os.environ['LSNB_JOBS'])   # runs side by side on the GPU (carried_study.sh JOBS)
        if frac is not None:
            import torch
            if torch.cuda.is_available():   # the caching allocator frees its cache before it would pass the share, instead of another process failing
                torch.cuda.set_per_process_memory_fraction(frac); info['gpu_memory_fraction'] = frac
        if args.prepared:
            folder = args.prepared/s.name
            rec = check_prepared(folder, s, loader.peek())   # the rows were made by the tokenizer loaded here
            items, rows = read_study_items(folder/'items.jsonl.gz'), read_rows(folder/'rows.npz')
            info['prepared'] = {k: rec.get(k) for k in ('time', 'commit', 'tokenizer_sha256', 'items_sha256', 'rows_sha256', 'sft_records')}
        else:
            from lsnb.sft_data import read_records
            if args.items:   # a saved item set: it must hold exactly the study's tasks
                items = read_study_items(args.items)
                want = {k: sorted(getattr(s.cfg, k)) for k in ('english', 'multilingual')}
                have = {k: sorted(items.get(k, {})) for k in ('english', 'multilingual')}
                if want != have: raise ConfigError(f'{args.items} holds the tasks {have}, the study {s.name} scores {want}')
                info['items_sha256'] = hashlib.sha256(args.items.read_bytes()).hexdigest()
            else: items = study_items(replace(s.cfg, data_root=args.data_root) if args.data_root else s.cfg)
            records = read_records(args.sft_records) if args.sft_records else None
            tok = loader.peek()
            rows = lambda seed, tok=tok, records=records, cfg=s.cfg: sft_rows(cfg, tok, records, data_seed=seed)   # per run's SFT subset
        left = None if args.budget_s is None else args.budget_s - (time.time() - T0)
        done = run_study(s.cfg, runs, d, loader, items, rows, budget_s=left, progress=args.progress, extra_info=info, subvocabs=subvocabs)
        still = [r.name for r in runs if not (d/'runs'/r.name/'run.json').exists()]
        print(f'{s.name}: done now {", ".join(done) or "none"}; left {", ".join(still) or "none"} ({time.time() - T0:.0f} s)', flush=True)
        del loader
        if still: return 3   # later studies wait for this one
    return 0


if __name__ == '__main__':
    try: sys.exit(main())
    except ConfigError as e:
        print(f'run_study.py: error: {e}', file=sys.stderr); sys.exit(2)

"""Multi-GPU runs of issue 18: the scaling of tokens/s over 1/2/4/8 GPUs (DDP and FSDP2) and the equal-curves check.

    LSNB_COMMIT=$(git rev-parse HEAD) python tools/multigpu/multigpu.py scaling --gpus 1,2,4,8 --out nbs/results/multigpu_scaling.json
    LSNB_COMMIT=$(git rev-parse HEAD) python tools/multigpu/multigpu.py curves --model .models/gemma-3-270m --gpus 2,4,8 \
        --out nbs/results/multigpu_curves.json
    python tools/multigpu/multigpu.py scaling --plan ...    # print the commands, run nothing (works without GPUs)

`scaling` launches one `torchrun` per (shape, mode, GPU count) on this file's `worker` (random-weight models of
`lsnb.sft_bench.PEER_SHAPES`, random token rows, the fused loss through `lsnb.sft.LSTrainer`, a fixed per-GPU batch),
`curves` runs `lsnb sft` on 1 GPU and on N GPUs at the same global batch (per-GPU batch / N) under torchrun (DDP) and
`accelerate launch --use_fsdp --fsdp_version 2` (FSDP2) and compares the logged losses. Every argument is checked
before anything is launched; each result file is rewritten atomically after every run, with the device, the commit
(`LSNB_COMMIT`) and the command."""
from __future__ import annotations
import argparse, json, os, shlex, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
MODES = ('ddp', 'fsdp2')
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, vocab_size=512)   # `--tiny`: a CPU smoke test of the worker
CURVE_RTOL = {'fp32': 1e-3, 'bf16': 3e-2}   # per logged step, N GPUs vs 1 (fp32: all-reduce order only; bf16: autocast noise)


def _ints(s, name):
    try: v = [int(x) for x in str(s).split(',') if x.strip()]
    except ValueError: raise ValueError(f'{name} must be a comma-separated list of integers, got {s!r}') from None
    if not v or any(x < 1 for x in v): raise ValueError(f'{name} must list GPU counts >= 1, got {s!r}')
    if len(set(v)) != len(v): raise ValueError(f'{name} lists a GPU count twice: {s!r}')
    return v


def _names(s, known, name):
    v = [x.strip() for x in str(s).split(',') if x.strip()]
    bad = [x for x in v if x not in known]
    if not v or bad: raise ValueError(f'{name}: unknown {", ".join(map(repr, bad)) or "(empty)"}; known: {", ".join(known)}')
    return v


def parser():
    p = argparse.ArgumentParser(prog='multigpu.py', description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    for name in ('scaling', 'curves'):
        q = sub.add_parser(name)
        q.add_argument('--gpus', default='1,2,4,8' if name == 'scaling' else '2,4,8', help='GPU counts, comma-separated')
        q.add_argument('--modes', default='ddp,fsdp2', help=f'comma-separated, of {", ".join(MODES)}')
        q.add_argument('--out', required=True, help='results JSON (rewritten atomically after each run)')
        q.add_argument('--steps', type=int, default=12 if name == 'scaling' else 20)
        q.add_argument('--length', type=int, default=2048 if name == 'scaling' else 512, help='tokens per row')
        q.add_argument('--plan', action='store_true', help='check the arguments, print the commands, run nothing')
        q.add_argument('--timeout', type=int, default=1800, help='seconds per launched run')
        if name == 'scaling':
            q.add_argument('--shapes', default='gemma-3-270m,llama-3.2-1b', help='names in lsnb.sft_bench.PEER_SHAPES')
            q.add_argument('--batch-size', type=int, default=8, help='rows per GPU (fixed: weak scaling)')
            q.add_argument('--warmup', type=int, default=4, help='steps not timed')
            q.add_argument('--alpha', type=float, default=0.1)
        else:
            q.add_argument('--model', required=True, help='a model folder or Hub id (lsnb sft --model)')
            q.add_argument('--gguf-file', default=None)
            q.add_argument('--global-batch', type=int, default=16, help='rows per optimizer step, over all GPUs')
            q.add_argument('--precision', choices=list(CURVE_RTOL), default='fp32')
            q.add_argument('--data', default=None, help='SFT records (default: the 200 Alpaca records shipped in lsnb/data)')
    w = sub.add_parser('worker', help='one run, under torchrun (internal)')
    w.add_argument('--shape', required=True); w.add_argument('--mode', choices=MODES, required=True)
    w.add_argument('--batch-size', type=int, required=True); w.add_argument('--length', type=int, required=True)
    w.add_argument('--steps', type=int, required=True); w.add_argument('--warmup', type=int, required=True)
    w.add_argument('--alpha', type=float, default=0.1); w.add_argument('--out', required=True)
    w.add_argument('--tiny', action='store_true', help='small config fields (CPU smoke test)')
    return p


def check(args, n_gpus=None):
    "Every argument, before anything runs: a ValueError that names the option. `n_gpus`: GPUs here (None: ask torch)."
    from lsnb.sft_bench import PEER_SHAPES
    args.gpus = _ints(args.gpus, '--gpus')
    args.modes = _names(args.modes, MODES, '--modes')
    for k in ('steps', 'length'):
        if getattr(args, k) < 1: raise ValueError(f'--{k} must be >= 1, got {getattr(args, k)}')
    out = Path(args.out)
    if out.suffix != '.json': raise ValueError(f'--out {out}: must be a .json file')
    if not out.parent.is_dir(): raise ValueError(f'--out {out}: its folder {out.parent} does not exist')
    if args.cmd == 'scaling':
        args.shapes = _names(args.shapes, list(PEER_SHAPES), '--shapes')
        if args.batch_size < 1: raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
        if not 0 <= args.warmup < args.steps: raise ValueError(f'--warmup must be in [0, --steps), got {args.warmup} with --steps {args.steps}')
        if not 0 <= args.alpha <= 1: raise ValueError(f'--alpha must be in [0, 1], got {args.alpha}')
    else:
        bad = [n for n in args.gpus if args.global_batch % n]
        if args.global_batch < 1 or bad:
            raise ValueError(f'--global-batch {args.global_batch} must be a positive multiple of every GPU count in --gpus (not of {bad})')
        if args.data is not None and not Path(args.data).is_file(): raise ValueError(f'--data {args.data}: no such file')
    if args.plan: return args
    if not os.environ.get('LSNB_COMMIT'): raise ValueError('LSNB_COMMIT is not set: run with LSNB_COMMIT=$(git rev-parse HEAD) (recorded in the results)')
    if n_gpus is None:
        import torch
        n_gpus = torch.cuda.device_count()
    if max(args.gpus) > n_gpus:
        raise ValueError(f'--gpus {",".join(map(str, args.gpus))}: this machine has {n_gpus} CUDA GPU(s); these runs need GPUs (use --plan to print them)')
    return args


def _port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _torchrun(n): return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(n)]


def _lsnb(): return [sys.executable, '-m', 'lsnb.sft']


def scaling_runs(args, tmp):
    "(key, command, its JSON) of every scaling run."
    for shape in args.shapes:
        for mode in args.modes:
            for n in args.gpus:
                j = Path(tmp)/f'{shape}-{mode}-{n}.json'
                yield (f'{shape}/{mode}/{n}', [*_torchrun(n), str(HERE), 'worker', '--shape', shape, '--mode', mode,
                        '--batch-size', str(args.batch_size), '--length', str(args.length), '--steps', str(args.steps),
                        '--warmup', str(args.warmup), '--alpha', str(args.alpha), '--out', str(j)], j)


def _data(args, tmp):
    if args.data: return args.data
    from lsnb.testing import alpaca_sample
    p = Path(tmp)/'alpaca200.jsonl'
    p.write_text(''.join(json.dumps(r) + '\n' for r in alpaca_sample(200)))
    return str(p)


def curve_runs(args, tmp):
    "(key, command, its output folder) of every curves run: the 1-GPU reference first."
    base = ['--model', args.model, *(['--gguf-file', args.gguf_file] if args.gguf_file else []), '--data', _data(args, tmp),
            '--max-length', str(args.length), '--packing', '--label-smoothing', '0.1', '--lr', '2e-5', '--max-steps', str(args.steps),
            '--logging-steps', '1', '--save-steps', str(args.steps), '--warmup', '2', '--seed', '0', '--drop-empty', '--no-save-final',
            *(['--bf16'] if args.precision == 'bf16' else [])]
    yield 'ref/1', [*_lsnb(), *base, '--batch-size', str(args.global_batch), '--out', str(Path(tmp)/'ref')], Path(tmp)/'ref'
    for mode in args.modes:
        for n in args.gpus:
            bs, out = str(args.global_batch // n), Path(tmp)/f'{mode}-{n}'
            if mode == 'ddp': launch = _torchrun(n) + ['-m', 'lsnb.sft']
            else: launch = ['accelerate', 'launch', '--use_fsdp', '--fsdp_version', '2', '--fsdp_auto_wrap_policy', 'TRANSFORMER_BASED_WRAP',
                            '--fsdp_state_dict_type', 'FULL_STATE_DICT', '--num_processes', str(n), '--num_machines', '1',
                            '--mixed_precision', 'bf16' if args.precision == 'bf16' else 'no', '--dynamo_backend', 'no',
                            '--main_process_port', str(_port()), '-m', 'lsnb.sft']
            yield f'{mode}/{n}', [*launch, *base, '--batch-size', bs, '--out', str(out)], out


def _save(args, results):
    import torch
    from lsnb.core import atomic_write_json
    atomic_write_json(args.out, dict(kind=args.cmd, device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu',
                                     n_gpus=torch.cuda.device_count(), commit=os.environ.get('LSNB_COMMIT'),
                                     command=' '.join(map(shlex.quote, sys.argv)), time=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
                                     settings={k: v for k, v in vars(args).items() if k not in ('plan', 'cmd')}, runs=results))


def _losses(out):
    return [r['loss'] for r in map(json.loads, (Path(out)/'log.jsonl').read_text().splitlines()) if 'loss' in r]


def main(argv=None):
    args = parser().parse_args(argv)
    if args.cmd == 'worker': return worker(args)
    try: args = check(args)
    except ValueError as e: print(f'multigpu.py: {e}', file=sys.stderr); return 2
    tmp = tempfile.mkdtemp(prefix='lsnb-multigpu-')
    runs = list((scaling_runs if args.cmd == 'scaling' else curve_runs)(args, tmp))
    if args.plan:
        for key, cmd, _ in runs: print(f'# {key}\n' + ' '.join(map(shlex.quote, cmd)))
        return 0
    old = json.loads(Path(args.out).read_text()).get('runs', {}) if Path(args.out).is_file() else {}
    results, env = {}, {**os.environ, 'TOKENIZERS_PARALLELISM': 'false'}
    for key, cmd, where in runs:
        if key in old and old[key].get('ok') and args.cmd == 'scaling': results[key] = old[key]; continue   # resumed: same file, done
        t0 = time.time(); print(f'multigpu.py: {key}: ' + ' '.join(map(shlex.quote, cmd)), file=sys.stderr, flush=True)
        try: p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
        except subprocess.TimeoutExpired: p = None
        r = dict(command=' '.join(map(shlex.quote, cmd)), wall_s=round(time.time() - t0, 1), ok=p is not None and p.returncode == 0)
        if not r['ok']: r['error'] = 'timeout' if p is None else p.stderr[-3000:]
        elif args.cmd == 'scaling': r.update(json.loads(Path(where).read_text()))
        else:
            r['losses'] = _losses(where)
            if key != 'ref/1' and results.get('ref/1', {}).get('ok'):
                ref = results['ref/1']['losses']
                r['max_rel_diff'] = max(abs(a - b) / abs(b) for a, b in zip(r['losses'], ref)) if len(r['losses']) == len(ref) else None
                r['rtol'] = CURVE_RTOL[args.precision]; r['equal'] = r['max_rel_diff'] is not None and r['max_rel_diff'] < r['rtol']
        results[key] = r; _save(args, results)
        print(f"multigpu.py: {key}: {'ok' if r['ok'] else 'FAILED'} ({r['wall_s']} s)" +
              (f", {r['tokens_per_s']:.0f} tokens/s" if r.get('tokens_per_s') else '') +
              (f", max rel. loss diff {r['max_rel_diff']:.1e}" if r.get('max_rel_diff') is not None else ''), file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r['ok'] and r.get('equal', True) for r in results.values()) else 1


def worker(args):
    "One timed run on this torchrun's processes; rank 0 writes `--out` (tokens/s over all ranks)."
    import torch
    from lsnb.core import atomic_write_json, seed_everything
    from lsnb.sft import LSTrainer, LossConfig, training_arguments
    from lsnb.sft_bench import peer_model, _RandomRows, _StepTimer
    world, rank, gpu = int(os.environ.get('WORLD_SIZE', '1')), int(os.environ.get('RANK', '0')), torch.cuda.is_available()
    if args.mode == 'fsdp2' and not gpu: raise ValueError('--mode fsdp2: accelerate applies FSDP on GPUs only')
    seed_everything(0)
    m = peer_model(args.shape, 'cpu', **(TINY if args.tiny else {}))   # the Trainer moves it (FSDP2: shards it first)
    layer = type(m.model.layers[0]).__name__
    fsdp = dict(fsdp='full_shard', fsdp_config=dict(version=2, transformer_layer_cls_to_wrap=[layer], reshard_after_forward=True,
                                                     state_dict_type='FULL_STATE_DICT')) if args.mode == 'fsdp2' else {}
    targs = training_arguments(tempfile.mkdtemp(prefix='lsnb-worker-'), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
                               learning_rate=1e-5, bf16=gpu, logging_steps=1, save_strategy='no', disable_tqdm=True, **fsdp)
    timer = _StepTimer()
    tr = LSTrainer(model=m, args=targs, loss_config=LossConfig(args.alpha), callbacks=[timer],
                   train_dataset=_RandomRows(args.batch_size * args.steps * world, args.length, m.config.vocab_size),
                   data_collator=lambda rows: {k: torch.stack([r[k] for r in rows]) for k in rows[0]})
    tr.train()
    sharded = type(next(tr.model_wrapped.parameters())).__name__
    if args.mode == 'fsdp2' and (not tr.is_fsdp_enabled or sharded != 'DTensor'):
        raise RuntimeError(f'--mode fsdp2: the Trainer did not apply FSDP2 (parameters are {sharded})')
    t = sorted(timer.times[args.warmup:]); step = t[len(t) // 2]
    peak = torch.tensor([torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0], device=targs.device)
    if world > 1: torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX)
    if rank == 0:
        atomic_write_json(args.out, dict(shape=args.shape, mode=args.mode, world_size=world, batch_per_gpu=args.batch_size, length=args.length,
                                         steps=args.steps, warmup=args.warmup, step_s=step, tokens_per_s=args.batch_size * world * args.length / step,
                                         peak_mem_gb_max_rank=float(peak), parameters=sharded, tiny=args.tiny,
                                         losses=[l['loss'] for l in tr.state.log_history if 'loss' in l]))
    return 0


if __name__ == '__main__':
    sys.exit(main())

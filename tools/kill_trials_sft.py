"""Kill trials for `lsnb sft` (issue 17): SIGKILL a tiny training run at random moments, resume it to the end, and check
that the final weights, `result.json` and `log.jsonl` are those of an uninterrupted run.

    python tools/kill_trials_sft.py --trials 20 --out kill_trials_sft.json

The run: a tiny Llama (`lsnb.testing`), 24 Alpaca records, `--max-steps 10 --save-steps 1` (a checkpoint every step, so
many kills land inside a checkpoint save), deterministic CPU training (`--impl torch`, one thread). Each trial kills the
run once (some twice) at one of: a random delay after the k-th log line, the moment a checkpoint folder appears (its
save under way), or while `final/` is being written; then runs `lsnb sft --resume` (or the plain command if the kill
came before `sft_config.json` existed) until it exits 0. Identical means bitwise-equal weights in `final/`, the same
`train_loss` and `global_step` in `result.json`, and the same (step, loss, grad_norm, learning_rate) log rows, each
step exactly once. The counts go to `--out` as JSON."""
from __future__ import annotations
import argparse, json, os, random, signal, subprocess, sys, tempfile, time
from pathlib import Path

RUN = 'import sys; from lsnb.cli import main; sys.exit(main(sys.argv[1:]))'

def setup(work:Path)->list:
    "Write the tiny model and data into `work`; the `lsnb sft` arguments of the run (without --out)."
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    from lsnb.testing import tiny_tokenizer, tiny_causal_lm, alpaca_sample
    recs = alpaca_sample(24)
    tok = tiny_tokenizer('gemma', texts=[r['instruction'] + ' ' + r['output'] for r in alpaca_sample(200)])
    m = tiny_causal_lm('llama', vocab_size=len(tok), seed=0, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id)
    m.save_pretrained(work/'tiny'); tok.save_pretrained(work/'tiny')
    (work/'data.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    return ['sft', '--model', str(work/'tiny'), '--data', str(work/'data.jsonl'), '--max-length', '96', '--drop-empty', '--batch-size', '4',
            '--lr', '3e-3', '--warmup', '2', '--label-smoothing', '0.1', '--max-steps', '10', '--save-steps', '1', '--logging-steps', '1',
            '--impl', 'torch', '--seed', '0']

def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', HF_HUB_OFFLINE='1',
                TQDM_DISABLE='1', PYTHONWARNINGS='ignore')

def start(args:list, out:Path)->subprocess.Popen:
    return subprocess.Popen([sys.executable, '-c', RUN, *args, '--out', str(out)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

def n_log_lines(out:Path)->int:
    try: return (out/'log.jsonl').read_bytes().count(b'\n')
    except OSError: return 0

def saving(out:Path)->bool:
    "A checkpoint folder without its completion marker, or final/ being written: a save is under way."
    return any(not (p/'lsnb_complete.json').exists() for p in out.glob('checkpoint-*')) or (out/'.final.tmp').exists()

def kill_at(p:subprocess.Popen, out:Path, rng:random.Random, steps:int)->dict:
    "Wait for a random moment of the run and SIGKILL it; what happened."
    mode = rng.choice(['after_log', 'during_save', 'during_save', 'during_final'])
    k, delay = rng.randint(0, steps), rng.uniform(0, 0.15)
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 300:
        if mode == 'after_log' and n_log_lines(out) >= k: time.sleep(delay); break
        if mode == 'during_save' and n_log_lines(out) >= k and saving(out): break
        if mode == 'during_final' and (out/'.final.tmp').exists(): time.sleep(delay / 10); break
        time.sleep(0.002)
    during = saving(out) if out.exists() else False
    if p.poll() is None:
        p.send_signal(signal.SIGKILL); p.wait()
        return dict(mode=mode, killed=True, during_save=during, log_lines=n_log_lines(out))
    return dict(mode=mode, killed=False, rc=p.returncode)

def finish(args:list, out:Path, max_tries:int=4)->tuple:
    "Resume (or start) until the run exits 0: (ok, [exit codes], last stderr)."
    rcs, err = [], ''
    for _ in range(max_tries):
        resume = ['--resume'] if (out/'sft_config.json').exists() else []
        p = subprocess.run([sys.executable, '-c', RUN, *args, *resume, '--out', str(out)], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        rcs.append(p.returncode); err = p.stderr
        if p.returncode == 0 and (out/'result.json').exists(): return True, rcs, err
    return False, rcs, err

def summary(out:Path)->dict:
    "What must equal the uninterrupted run: weights, result.json's numbers, the log's rows."
    from safetensors.torch import load_file
    res = json.loads((out/'result.json').read_text())
    rows = [json.loads(l) for l in (out/'log.jsonl').read_text().splitlines() if l.strip()]
    steps = [(r['step'], r['loss'], r['grad_norm'], r['learning_rate']) for r in rows if 'loss' in r]
    return dict(w=load_file(out/'final'/'model.safetensors'), train_loss=res['train']['train_loss'], global_step=res['global_step'],
                steps=steps, hist=[(r['step'], r['loss']) for r in res['log_history'] if 'loss' in r])

def compare(a:dict, b:dict)->dict:
    import torch
    diff = max(float((a['w'][k] - b['w'][k]).abs().max()) for k in a['w'])
    bitwise = all(torch.equal(a['w'][k], b['w'][k]) for k in a['w']) and a['w'].keys() == b['w'].keys()
    same = dict(weights_bitwise=bitwise, max_weight_diff=diff, train_loss=a['train_loss'] == b['train_loss'],
                train_loss_diff=abs(a['train_loss'] - b['train_loss']), global_step=a['global_step'] == b['global_step'],
                log=a['steps'] == b['steps'], log_history=a['hist'] == b['hist'])
    same['identical'] = bitwise and same['train_loss'] and same['global_step'] and same['log'] and same['log_history']
    same['within_tolerance'] = diff <= 1e-6 and same['train_loss_diff'] <= 1e-9 and same['global_step'] and [s[0] for s in a['steps']] == [s[0] for s in b['steps']]
    return same

def trials(n:int=20, seed:int=0, work:str|None=None)->dict:
    "Run `n` kill trials; the counts and one row per trial."
    tmp = tempfile.TemporaryDirectory() if work is None else None
    work = Path(tmp.name if tmp else work); work.mkdir(parents=True, exist_ok=True)
    args, rng = setup(work), random.Random(seed)
    ref_out = work/'reference'
    p = subprocess.run([sys.executable, '-c', RUN, *args, '--out', str(ref_out)], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode: raise RuntimeError(f'the uninterrupted run failed (exit {p.returncode}): {p.stderr[-2000:]}')
    ref, rows = summary(ref_out), []
    for t in range(n):
        out = work/f'trial{t:02d}'
        kills = [kill_at(start(args, out), out, rng, 10)]
        if rng.random() < 0.25 and (out/'sft_config.json').exists():   # a second kill, during the resumed run
            kills.append(kill_at(start(args + ['--resume'], out), out, rng, 10))
        ok, rcs, err = finish(args, out)
        row = dict(trial=t, kills=kills, resume_exit_codes=rcs, resumed=ok)
        if ok: row.update(compare(ref, summary(out)))
        else: row['stderr'] = err[-1000:]
        rows.append(row); print(json.dumps({k: v for k, v in row.items() if k != 'stderr'}), flush=True)
    killed = [r for r in rows if any(k['killed'] for k in r['kills'])]
    counts = dict(trials=n, killed=len(killed), kills=sum(k['killed'] for r in rows for k in r['kills']),
                  killed_during_save=sum(any(k.get('during_save') for k in r['kills']) for r in rows),
                  finished_before_kill=sum(not any(k['killed'] for k in r['kills']) for r in rows),
                  resumed=sum(r['resumed'] for r in rows), identical=sum(bool(r.get('identical')) for r in rows),
                  within_tolerance=sum(bool(r.get('within_tolerance')) for r in rows),
                  failed=sum(not r.get('within_tolerance') for r in rows))
    if tmp: tmp.cleanup()
    return dict(counts=counts, tolerance='identical: bitwise weights, equal train_loss, log rows and log_history; within_tolerance: weights 1e-6, train_loss 1e-9, same steps',
                command=' '.join(['lsnb', *args[:]]).replace(str(work), '<work>'), trials=rows)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--trials', type=int, default=20); ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default='kill_trials_sft.json', help='JSON file for the counts and the trials')
    ap.add_argument('--work', default=None, help='keep the runs in this folder (default: a temporary one)')
    a = ap.parse_args()
    r = trials(a.trials, a.seed, a.work)
    Path(a.out).write_text(json.dumps(r, indent=1, default=str) + '\n')
    print(json.dumps(r['counts']))
    sys.exit(0 if r['counts']['failed'] == 0 else 1)

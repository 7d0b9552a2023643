"""Kill trials for `lsnb eval` (issue 17): run it on a tiny local model and task, SIGKILL it at random moments while it
appends records, resume it, and check that the resumed run's records and summary are identical to an uninterrupted run's.

    python tools/kill_trials_eval.py --trials 20 --out kill_trials_eval.json

Everything is built offline in a temporary folder with `lsnb.testing` (a tiny BPE tokenizer and a 2-layer llama), the
task is the packaged `arc_easy_200` sample (`--limit` items). Each trial starts `lsnb eval` in a fresh output folder,
waits until its records file has grown past a random number of lines (0 to all but one), sleeps a random 0-20 ms and
kills the process with SIGKILL; then it runs the same command again to completion (the resume) and compares. The
counts are saved as JSON to `--out`."""
from __future__ import annotations
import os, sys, json, time, random, signal, argparse, subprocess, tempfile
from pathlib import Path

TAG = 'option.0shot'

def make_model(folder:Path):
    "A tiny tokenizer and causal LM saved in `folder` (offline, a second or two)."
    from lsnb.testing import tiny_tokenizer, tiny_model
    tok = tiny_tokenizer(); tiny_model(tok, seed=3).save_pretrained(folder); tok.save_pretrained(folder)
    return folder

def command(model:Path, out:Path, limit:int):
    return [sys.executable, '-m', 'lsnb.cli', 'eval', '--model', str(model), '--tasks', 'arc_easy_200', '--limit', str(limit),
            '--method', 'option', '--batch-size', '1', '--n-boot', '20', '--device', 'cpu', '--no-progress', '--out', str(out)]

def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', TOKENIZERS_PARALLELISM='false', HF_HUB_OFFLINE='1', TRANSFORMERS_VERBOSITY='error')
    root = str(Path(__file__).resolve().parents[1])
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '') if env.get('PYTHONPATH') else root
    return env

def results(out:Path):
    "What a finished run leaves: records by id, and the summary's per-task numbers (times and provenance dropped)."
    recs = {}
    for l in (out/f'arc_easy_200.{TAG}.jsonl').read_text(encoding='utf-8').splitlines():
        if l.strip(): r = json.loads(l); recs.setdefault(r['id'], []).append(r)
    s = json.loads((out/f'summary.{TAG}.json').read_text(encoding='utf-8'))
    tasks = {t: {k: v for k, v in d.items() if k != 'seconds'} for t, d in s['tasks'].items()}
    return recs, tasks

def _lines(p:Path):
    try: return p.read_bytes().count(b'\n')
    except FileNotFoundError: return 0

def trial(model:Path, out:Path, limit:int, ref, rng:random.Random, timeout:float=300):
    "One kill and one resume; a dict of what happened."
    recf = out/f'arc_easy_200.{TAG}.jsonl'
    target = rng.randrange(0, limit)          # kill once the file has more than this many lines
    delay = rng.uniform(0, 0.02)
    p = subprocess.Popen(command(model, out, limit), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0, killed = time.time(), False
    while p.poll() is None and time.time() - t0 < timeout:
        if _lines(recf) > target:
            time.sleep(delay)
            if p.poll() is None: p.send_signal(signal.SIGKILL); killed = True
            break
        time.sleep(0.001)
    p.wait()
    at = _lines(recf)
    r = subprocess.run(command(model, out, limit), env=_env(), capture_output=True, text=True, timeout=timeout)
    row = dict(target=target, killed=killed, lines_at_kill=at, resume_rc=r.returncode)
    if r.returncode:
        row['error'] = (r.stderr.strip().splitlines() or [''])[-1]; return row
    recs, tasks = results(out)
    row['duplicates'] = sum(len(v) - 1 for v in recs.values())
    row['identical'] = recs == ref[0] and tasks == ref[1]
    return row

def run_trials(n:int=20, limit:int=10, seed:int=0, work:str|Path|None=None)->dict:
    "`n` kill trials; the counts (and each trial's row)."
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(dir=work) as d:
        d = Path(d); model = make_model(d/'model')
        r = subprocess.run(command(model, d/'ref', limit), env=_env(), capture_output=True, text=True)
        if r.returncode: raise RuntimeError(f'the uninterrupted run failed: {r.stderr.strip().splitlines()[-1:]}')
        ref = results(d/'ref')
        rows = [trial(model, d/f'trial{i}', limit, ref, rng) for i in range(n)]
    counts = dict(trials=n, killed=sum(r['killed'] for r in rows), resumed=sum(r['resume_rc'] == 0 for r in rows),
                  identical=sum(bool(r.get('identical')) for r in rows), differing=sum(r.get('identical') is False for r in rows),
                  failed_resumes=sum(r['resume_rc'] != 0 for r in rows), duplicate_records=sum(r.get('duplicates', 0) for r in rows))
    return dict(counts=counts, items=limit, seed=seed, command=' '.join(['lsnb'] + command(Path('<model>'), Path('<out>'), limit)[3:]), rows=rows)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--trials', type=int, default=20, help='number of kill trials (default: 20)')
    p.add_argument('--limit', type=int, default=10, help='items of the task (default: 10)')
    p.add_argument('--seed', type=int, default=0, help='seed of the kill moments (default: 0)')
    p.add_argument('--out', required=True, help='JSON file for the counts')
    a = p.parse_args(argv)
    if a.trials < 1 or a.limit < 2: p.error('--trials must be >= 1 and --limit >= 2')
    res = run_trials(a.trials, a.limit, a.seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(a.out).with_name(f'.{Path(a.out).name}.tmp'); tmp.write_text(json.dumps(res, indent=2) + '\n'); os.replace(tmp, a.out)
    print(json.dumps(res['counts']))
    return 0 if res['counts']['identical'] == a.trials else 1

if __name__ == '__main__': sys.exit(main())

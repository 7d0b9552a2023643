"""Several processes on the CPU (gloo) through lsnb's fused loss (issue 18): FSDP2 (`fully_shard`) gives the gradients of
one process, and `lsnb sft` under `torchrun` (the Trainer's DDP) takes the steps of one process at the same global batch.

The multi-process parts are launched with `torchrun --standalone` (a free port each time) on this file itself: run as a
script, it is the worker (`python -m torch.distributed.run ... tests/test_distributed.py fsdp`)."""
import contextlib, io, json, os, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false', 'PYTHONWARNINGS': 'ignore'}
GRAD_RTOL = 2e-5   # FSDP2 vs one process, per parameter: max |g - g_ref| / max |g_ref| (float32; measured about 3e-7)


def torchrun(*args, n=2, timeout=240):
    "Run `torchrun --standalone --nproc_per_node n ARGS` on the CPU: the CompletedProcess."
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(n), *map(str, args)]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


# ---------------------------------------------------------------- FSDP2: the worker (one process per rank)
def _ref_grads(arch, ids, labels, alpha):
    "The unsharded model's gradients of the token-mean loss from its own logits (F.cross_entropy, no lsnb kernel)."
    import torch.nn.functional as F
    from lsnb.testing import tiny_causal_lm
    ref = tiny_causal_lm(arch, seed=1)
    logits = ref(input_ids=ids, use_cache=False).logits
    F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), label_smoothing=alpha, ignore_index=-100).backward()
    return {k: p.grad for k, p in ref.named_parameters()}


FSDP_CASES = ('root', 'head_unit', 'head_unit_saved_weight', 'tied_unit')


def _fsdp_case(case, r, P):
    "Shard a tiny model one way, run the fused loss on this rank's rows, return the worst relative gradient error."
    import torch, torch.distributed as dist
    from torch.distributed.fsdp import fully_shard
    from lsnb.testing import tiny_causal_lm
    from lsnb.sft import FusedHead, LossConfig
    import lsnb.sft
    arch = 'llama' if case.startswith('head_unit') else 'gemma3'   # gemma3: tied embedding, final softcap; the llama is untied
    lce = lsnb.sft._lce
    if case == 'head_unit_saved_weight':   # a kernel that keeps the weight for its backward (as impl='fused' and 'cce' do)
        from lsnb.kernel import reference_loss
        lsnb.sft._lce = lambda: (lambda h, w, y, impl=None, **kw: reference_loss(h, w, y, **kw))
    torch.manual_seed(1234)
    ids = torch.randint(0, 1000, (2 * P, 12)); labels = ids.clone(); labels[:, :4] = -100; labels[0, 7:] = -100
    ref = _ref_grads(arch, ids, labels, 0.1)
    m = tiny_causal_lm(arch, seed=1)
    for layer in m.model.layers: fully_shard(layer)
    if case.startswith('head_unit'): fully_shard(m.lm_head)                       # the head is its own unit (resharded after its forward)
    if case == 'tied_unit': fully_shard([m.model.embed_tokens, m.lm_head])       # embedding and tied head: one unit
    fully_shard(m)                                                                # 'root': the head's weight belongs to the root unit
    fh = FusedHead(m, LossConfig(0.1))
    rows = slice(2 * r, 2 * r + 2)
    with fh.armed(labels[rows]): m(input_ids=ids[rows], use_cache=False)
    s, n = fh.result
    tot = torch.tensor([float(n)]); dist.all_reduce(tot)
    (s / tot * P).backward()   # FSDP2 averages the gradients over the ranks
    lsnb.sft._lce = lce
    worst = 0.0
    for k, p in m.named_parameters():
        g = p.grad.full_tensor()
        worst = max(worst, ((g - ref[k]).abs().max() / ref[k].abs().max()).item())
    return worst


def _fsdp_error(case, r, P):
    "The message of the ValueError that a wrongly sharded head raises on this rank ('' if none)."
    import torch, torch.nn as nn
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import distribute_tensor, init_device_mesh, Shard
    from lsnb.testing import tiny_causal_lm
    from lsnb.sft import FusedHead, LossConfig
    ids = torch.randint(0, 1000, (1, 12))
    if case == 'inner_only':   # fully_shard(model.model) without the root: FSDP2 unties the embedding from the head
        m = tiny_causal_lm('gemma3', seed=1); fully_shard(m.model)
    else:                      # 'dtensor_head': the head's weight is a vocabulary shard (as tensor parallelism leaves it)
        m = tiny_causal_lm('llama', seed=1)
        mesh = init_device_mesh('cpu', (P,))
        m.lm_head.weight = nn.Parameter(distribute_tensor(m.lm_head.weight.detach(), mesh, [Shard(0)]))
    fh = FusedHead(m, LossConfig(0.1))
    try:
        with fh.armed(ids): m(input_ids=ids, use_cache=False)
    except ValueError as e: return str(e)
    return ''


def _worker(mode, out):
    import warnings; warnings.filterwarnings('ignore')
    import torch.distributed as dist
    dist.init_process_group('gloo'); r, P = dist.get_rank(), dist.get_world_size()
    res = {}
    if mode == 'fsdp':
        for case in FSDP_CASES: res[case] = _fsdp_case(case, r, P)
        for case in ('inner_only', 'dtensor_head'): res[case] = _fsdp_error(case, r, P)
    Path(out, f'rank{r}.json').write_text(json.dumps(res))
    dist.barrier()
    dist.destroy_process_group()


def _results(proc, out, n=2):
    "Each rank's results (the worker's `rank{r}.json` files)."
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return [json.loads((out/f'rank{r}.json').read_text()) for r in range(n)]


def test_fsdp2_fused_head_gradients(tmp_path):
    "FSDP2 on 2 gloo processes, each with half the batch: the gathered gradients of every parameter equal the unsharded model's."
    t0 = time.time()
    res = _results(torchrun(__file__, 'fsdp', tmp_path), tmp_path)
    for r in res:
        for case in FSDP_CASES: assert r[case] < GRAD_RTOL, (case, r[case])
        assert 'no longer share one weight' in r['inner_only'] and 'fully_shard(model)' in r['inner_only'], r['inner_only']
        assert 'is a DTensor' in r['dtensor_head'] and 'linear_cross_entropy_vp' in r['dtensor_head'], r['dtensor_head']
    print('FSDP2 worst relative gradient error: ' + ', '.join(f'{c} {res[0][c]:.1e}' for c in FSDP_CASES) + f' ({time.time() - t0:.0f} s)')


# ---------------------------------------------------------------- lsnb sft under torchrun (DDP)
LOSS_RTOL = 1e-5   # per logged step, 2 processes vs 1 (measured: equal to about 1e-7)
# Checkpoint weights after 3 AdamW steps at lr 3e-3. Not elementwise: Adam divides by the root of the squared gradient,
# so an element whose gradient is near 0 (a summation-order difference of 1e-9 against a gradient of 1e-9) takes a
# different step of up to about lr, whatever the reduction's accuracy (seen: max |diff| 5e-5 here, 3.6e-4 on CI's
# machine, same losses). The update as a whole is what DDP must reproduce: |Δ_ddp - Δ_one| / |Δ_one| over all weights
# (Δ = checkpoint - initial weights, 2-norm; measured 5.8e-5 here).
UPDATE_RTOL = 1e-2


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from lsnb.testing import tiny_tokenizer, tiny_causal_lm, alpaca_sample
    w = tmp_path_factory.mktemp('dist')
    tok = tiny_tokenizer('gemma', texts=[r['instruction'] + ' ' + r['output'] for r in alpaca_sample(200)])
    m = tiny_causal_lm('llama', vocab_size=len(tok), seed=0)
    m.config.bos_token_id, m.config.eos_token_id, m.config.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    m.save_pretrained(w/'tiny'); tok.save_pretrained(w/'tiny')
    (w/'data.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in alpaca_sample(24)))
    return w


def _sft_args(w, out, bs):
    return ['sft', '--model', w/'tiny', '--data', w/'data.jsonl', '--max-length', 96, '--batch-size', bs, '--lr', 3e-3,
            '--logging-steps', 1, '--seed', 0, '--drop-empty', '--impl', 'torch', '--label-smoothing', 0.1,
            '--max-steps', 3, '--save-steps', 3, '--keep-checkpoints', '--out', out]


def _losses(out): return [r['loss'] for r in map(json.loads, (out/'log.jsonl').read_text().splitlines()) if 'loss' in r]


@pytest.fixture(scope='module')
def one_process(tiny):
    "The reference: `lsnb sft --batch-size 4` in this process."
    from lsnb.cli import main
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main([str(a) for a in _sft_args(tiny, tiny/'one', 4)]) == 0
    return tiny/'one'


def _same_run(one, out, proc):
    "The 2-process run `out` took the steps of the one-process run `one`; its files were written once, by rank 0."
    import torch
    from safetensors.torch import load_file
    assert proc.returncode == 0, proc.stderr[-4000:]
    l1, l2 = _losses(one), _losses(out)
    assert len(l1) == len(l2) == 3, (l1, l2)   # one log line per step: rank 1 writes no log
    torch.testing.assert_close(torch.tensor(l2, dtype=torch.float64), torch.tensor(l1, dtype=torch.float64), rtol=LOSS_RTOL, atol=0)
    w0 = load_file(one.parent/'tiny'/'model.safetensors')
    w1, w2 = load_file(one/'checkpoint-3'/'model.safetensors'), load_file(out/'checkpoint-3'/'model.safetensors')
    assert set(w1) == set(w2) == set(w0), (sorted(w0), sorted(w1), sorted(w2))
    d1 = torch.cat([(w1[k].double() - w0[k].double()).flatten() for k in sorted(w0)])
    d2 = torch.cat([(w2[k].double() - w0[k].double()).flatten() for k in sorted(w0)])
    assert d1.norm() > 0, 'the one-process run did not change the weights'
    wworst = ((d2 - d1).norm() / d1.norm()).item()
    assert wworst < UPDATE_RTOL, (wworst, (d2 - d1).abs().max().item())
    res = json.loads((out/'result.json').read_text())
    assert res['global_step'] == 3 and (out/'final'/'model.safetensors').is_file()
    assert proc.stdout.count('lsnb sft: 3 steps') == 1, proc.stdout[-2000:]   # the summary (and final/, result.json) from rank 0 only
    return l1, l2, max(abs(a - b) / abs(a) for a, b in zip(l1, l2)), wworst


def test_sft_torchrun_ddp_equals_one_process(tiny, one_process):
    "`torchrun --nproc_per_node 2 lsnb sft --batch-size 2` = `lsnb sft --batch-size 4`: losses, weights; files written once, by rank 0."
    t0 = time.time()
    p = torchrun(Path(sys.executable).with_name('lsnb'), *_sft_args(tiny, tiny/'ddp2', 2))
    l1, l2, worst, wworst = _same_run(one_process, tiny/'ddp2', p)
    print(f'torchrun DDP: losses {l2} vs {l1}, worst relative {worst:.1e}; update relative difference {wworst:.1e} ({time.time() - t0:.0f} s)')


def test_sft_accelerate_launch_ddp_equals_one_process(tiny, one_process):
    "`accelerate launch --multi_gpu --num_processes 2` on a CPU machine: DDP over gloo, the same steps as one process."
    t0 = time.time()
    cmd = [Path(sys.executable).with_name('accelerate'), 'launch', '--multi_gpu', '--num_processes', 2, '--num_machines', 1,
           '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', _free_port(),
           Path(sys.executable).with_name('lsnb'), *_sft_args(tiny, tiny/'acc2', 2)]
    p = subprocess.run([str(c) for c in cmd], env=ENV, capture_output=True, text=True, timeout=240, cwd=ROOT)
    l1, l2, worst, wworst = _same_run(one_process, tiny/'acc2', p)
    print(f'accelerate DDP: losses {l2} vs {l1}, worst relative {worst:.1e}; update relative difference {wworst:.1e} ({time.time() - t0:.0f} s)')


def test_sft_accelerate_fsdp_on_cpu_refused(tiny, monkeypatch):
    "`accelerate launch --use_fsdp` without GPUs: a clear error before anything is loaded (accelerate would fall back to DDP)."
    from lsnb.cli import main
    monkeypatch.setenv('ACCELERATE_USE_FSDP', 'true')
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in _sft_args(tiny, tiny/'fsdp_cpu', 2)])
    assert rc == 2 and '--use_fsdp' in err.getvalue() and 'GPUs only' in err.getvalue(), (rc, err.getvalue())
    assert not (tiny/'fsdp_cpu').exists()


def _free_port():
    import socket
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


# ---------------------------------------------------------------- tools/multigpu: what can be checked without GPUs
def _multigpu():
    import importlib.util
    spec = importlib.util.spec_from_file_location('multigpu', ROOT/'tools'/'multigpu'/'multigpu.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize('argv, words', [
    (['scaling', '--gpus', '1,two'], '--gpus must be a comma-separated list of integers'),
    (['scaling', '--gpus', '0,2'], '--gpus must list GPU counts >= 1'),
    (['scaling', '--gpus', '2,2'], '--gpus lists a GPU count twice'),
    (['scaling', '--shapes', 'gemma-3-270m,llama-7b'], "--shapes: unknown 'llama-7b'"),
    (['scaling', '--modes', 'ddp,zero3'], "--modes: unknown 'zero3'"),
    (['scaling', '--warmup', '12'], '--warmup must be in [0, --steps)'),
    (['scaling', '--batch-size', '0'], '--batch-size must be >= 1'),
    (['curves', '--model', 'm', '--global-batch', '6'], '--global-batch 6 must be a positive multiple of every GPU count'),
    (['curves', '--model', 'm', '--data', 'no/such.jsonl'], '--data no/such.jsonl: no such file'),
    (['scaling'], 'LSNB_COMMIT is not set'),
    (['scaling', '--gpus', '1,2,4,8', '--commit-set'], 'this machine has 4 CUDA GPU(s)'),
])
def test_multigpu_argument_checks(argv, words, tmp_path, monkeypatch):
    "Every bad argument of tools/multigpu/multigpu.py fails before anything is launched, naming the option."
    mg = _multigpu()
    monkeypatch.delenv('LSNB_COMMIT', raising=False)
    if '--commit-set' in argv: argv = [a for a in argv if a != '--commit-set']; monkeypatch.setenv('LSNB_COMMIT', 'abc')
    args = mg.parser().parse_args([*argv, '--out', str(tmp_path/'r.json')])
    with pytest.raises(ValueError, match=None) as e: mg.check(args, n_gpus=4)
    assert words in str(e.value), str(e.value)


def test_multigpu_plan_and_cpu_worker(tmp_path, capsys):
    "`--plan` prints every run (per-GPU batch = global / N), runs nothing, on a machine without GPUs; the worker runs on the CPU."
    mg = _multigpu()
    assert mg.main(['curves', '--model', 'm', '--gpus', '2,4', '--global-batch', '8', '--out', str(tmp_path/'c.json'), '--plan']) == 0
    plan = capsys.readouterr().out
    assert plan.count('# ') == 5 and '--use_fsdp --fsdp_version 2' in plan and not (tmp_path/'c.json').exists()
    assert [l.split('--batch-size ')[1].split()[0] for l in plan.splitlines() if '--batch-size' in l] == ['8', '4', '2', '4', '2']
    assert mg.main(['scaling', '--out', str(tmp_path/'s.json'), '--plan']) == 0
    assert capsys.readouterr().out.count('worker --shape') == 16
    assert mg.main(['scaling', '--out', str(tmp_path/'nofolder'/'s.json')]) == 2
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        mg.main(['worker', '--shape', 'llama-3.2-1b', '--mode', 'ddp', '--batch-size', '2', '--length', '16', '--steps', '3', '--warmup', '1',
                 '--out', str(tmp_path/'w.json'), '--tiny'])
    w = json.loads((tmp_path/'w.json').read_text())
    assert w['world_size'] == 1 and w['tokens_per_s'] > 0 and len(w['losses']) == 3 and all(l == l for l in w['losses'])


if __name__ == '__main__':
    _worker(*sys.argv[1:])
    # the results are written and the group destroyed: skip the interpreter's finalisation, which Gloo's threads can
    # abort under load (exit -6 after a passing run; see lsnb.kernel_parallel._run_vp_test)
    sys.stdout.flush(); sys.stderr.flush(); os._exit(0)

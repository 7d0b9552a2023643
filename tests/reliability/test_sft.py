"""Reliability of `lsnb sft` and `lsnb.sft_data` (issue 17, part C): one test per entry of catalogue_sft.json.

Every case runs the real command line (`lsnb.cli.main(['sft', ...])`, in-process) on a tiny Llama from `lsnb.testing`
and 24 Alpaca records; a bad input must fail with exit 2 (or 1) and a message naming the option or file, before anything
is written; a run that resumes must give what an uninterrupted run gives."""
import contextlib, gzip, io, json, shutil, sys
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    from lsnb.testing import tiny_tokenizer, tiny_causal_lm, alpaca_sample
    w = tmp_path_factory.mktemp('sft')
    recs = alpaca_sample(24)
    tok = tiny_tokenizer('gemma', texts=[r['instruction'] + ' ' + r['output'] for r in alpaca_sample(200)])
    m = tiny_causal_lm('llama', vocab_size=len(tok), seed=0)
    m.config.bos_token_id, m.config.eos_token_id, m.config.pad_token_id = tok.bos_token_id, tok.eos_token_id, tok.pad_token_id
    m.save_pretrained(w/'tiny'); tok.save_pretrained(w/'tiny')
    (w/'data.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in recs))
    return dict(w=w, recs=recs, n=[0])


BASE = ['--max-length', 128, '--batch-size', 4, '--lr', 3e-3, '--logging-steps', 1, '--impl', 'torch', '--drop-empty', '--no-save-final']


def _out(env):
    env['n'][0] += 1
    return env['w']/f"out{env['n'][0]}"


def sft(env, *a, out=None, base=True, data=None):
    "Run `lsnb sft` in-process: (exit code, stderr, out folder)."
    from lsnb.cli import main
    out = out or _out(env)
    argv = ['sft', '--model', env['w']/'tiny', '--data', data or env['w']/'data.jsonl', *(BASE if base else []), *a, '--out', out]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(x) for x in argv])
    return rc, err.getvalue(), Path(out)


def refused(env, *a, words, rc=2, data=None, base=True):
    "The command fails with exit `rc`, a message containing every one of `words`, and writes nothing."
    code, err, out = sft(env, *a, data=data, base=base)
    assert code == rc, (code, err)
    for w in ([words] if isinstance(words, str) else words): assert w in err, (w, err)
    assert 'Traceback' not in err and 'internal error' not in err, err
    assert not out.exists(), sorted(out.rglob('*'))
    return err


def write(env, name, content):
    p = env['w']/name
    p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content, encoding='utf-8')
    return p


def jsonl(recs): return ''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in recs)
def losses(out): return [(r['step'], r['loss']) for r in map(json.loads, (out/'log.jsonl').read_text().splitlines()) if 'loss' in r]
def result(out): return json.loads((out/'result.json').read_text())
def weights(p): return load_file(p/'model.safetensors')
def same_weights(a, b): return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


@pytest.fixture(scope='module')
def ref4(env):
    "An uninterrupted 4-step run with a checkpoint every 2 steps (kept: --no-save-final)."
    code, err, out = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2)
    assert code == 0, err
    return out


def interrupted(env, f, *extra):
    "Stop at step 2 (its checkpoint), damage it with `f`, resume: (exit code, stderr, out)."
    code, err, out = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--stop-at', 2, *extra)
    assert code == 0, err
    f(out/'checkpoint-2')
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--resume', *extra, out=out)
    return code, err, out


# ---- issue 17 item 3: divergence ----
def test_sft_01_lr_1e6_diverges(env):
    code, err, out = sft(env, '--lr', 1e6, '--max-steps', 6, '--save-steps', 1)
    assert code == 1 and 'training diverged at step' in err and 'not finite' in err and '--lr' in err, err
    from lsnb.sft import last_complete_checkpoint
    ck = last_complete_checkpoint(out)
    bad = int(err.split('training diverged at step ')[1].split(':')[0])
    assert ck is not None and ck.name == f'checkpoint-{bad - 1}' and str(ck) in err
    assert all(torch.isfinite(v).all() for v in weights(ck).values())
    assert all(l == l and l != 0.0 for _, l in losses(out))   # no 0.0 / NaN stand-ins in the log
    assert not (out/'result.json').exists()

def test_sft_02_lr_inf(env): refused(env, '--lr', 'inf', '--max-steps', 2, words=['--lr', 'finite', 'inf'])
def test_sft_03_warmup_nan(env): refused(env, '--warmup', 'nan', '--max-steps', 2, words=['--warmup must be a finite number, got nan'])
def test_sft_04_epochs_inf(env): refused(env, '--epochs', 'inf', words=['--epochs must be a finite number, got inf'])
def test_sft_05_impl_bogus(env): refused(env, '--impl', 'bogus', '--max-steps', 2, words=["--impl must be one of auto, triton, torch, cce, fused, got 'bogus'"])
def test_sft_06_softcap_inf(env): refused(env, '--softcap', 'inf', '--max-steps', 2, words=['--softcap must be a finite number, got inf'])

def test_sft_07_triton_without_gpu(env, monkeypatch):
    if torch.cuda.is_available(): pytest.skip('a GPU is present: --impl triton is valid here')
    import lsnb.kernel
    monkeypatch.setattr(lsnb.kernel, 'INTERPRETED', False)
    refused(env, *[x for x in BASE if x not in ('--impl', 'torch')], '--impl', 'triton', '--max-steps', 2, base=False,
            words=["--impl triton: impl='triton' needs CUDA tensors"])

# ---- data files ----
def test_sft_08_empty_json(env): refused(env, '--max-steps', 2, data=write(env, 'e.json', ''), words=['e.json: the file is empty'])
def test_sft_09_empty_jsonl(env): refused(env, '--max-steps', 2, data=write(env, 'e.jsonl', '\n\n'), words=['e.jsonl: the file is empty'])
def test_sft_10_empty_list(env): refused(env, '--max-steps', 2, data=write(env, 'el.json', '[]'), words=['el.json: no records'])
def test_sft_11_missing_file(env): refused(env, '--max-steps', 2, data=env['w']/'nope.jsonl', words=['missing data file', 'nope.jsonl'])
def test_sft_12_missing_no_extension(env): refused(env, '--max-steps', 2, data=env['w']/'nope', words=['missing data file', 'nope'])

def test_sft_13_plain_folder(env):
    (env['w']/'plain_dir').mkdir(exist_ok=True); (env['w']/'plain_dir'/'x.txt').write_text('x')
    refused(env, '--max-steps', 2, data=env['w']/'plain_dir', words=['plain_dir is a folder but not a datasets save_to_disk folder'])

def test_sft_14_torn_middle_line(env):
    t = (env['w']/'data.jsonl').read_text().splitlines(); t[3] = t[3][:20]
    refused(env, '--max-steps', 2, data=write(env, 'tm.jsonl', '\n'.join(t) + '\n'), words=['tm.jsonl: line 4 is not valid JSON'])

def test_sft_15_torn_last_line(env):
    refused(env, '--max-steps', 2, data=write(env, 'tl.jsonl', (env['w']/'data.jsonl').read_text()[:-40]), words=['tl.jsonl: line 24 is not valid JSON'])

def test_sft_16_no_instruction_output(env):
    refused(env, '--max-steps', 2, data=write(env, 'nc.jsonl', jsonl({'text': r['output']} for r in env['recs'])),
            words=["record 0: unrecognised record with columns ['text']"])

def test_sft_17_one_record_without_output(env):
    recs = list(env['recs']); recs[5] = {'instruction': 'x'}
    refused(env, '--max-steps', 2, data=write(env, 'no.jsonl', jsonl(recs)), words=["record 5: Alpaca record is missing column(s) ['output']"])

def test_sft_18_all_too_long_drop_empty(env):
    refused(env, '--max-length', 8, '--max-steps', 2, words=['no training examples left: of 24 records', 'no response token within max_length=8'])

def test_sft_19_all_too_long(env):
    refused(env, *[x for x in BASE if x != '--drop-empty'], '--max-length', 8, '--max-steps', 2, base=False,
            words=['24 of 24 examples have no response tokens after truncation to max_length=8', '--drop-empty'])

def test_sft_20_limit_zero(env): refused(env, '--limit', 0, '--max-steps', 2, words=['--limit must be >= 1'])
def test_sft_21_limit_negative(env): refused(env, '--limit', -1, '--max-steps', 2, words=['--limit must be >= 1'])

def test_sft_22_non_utf8(env):
    raw = (env['w']/'data.jsonl').read_bytes()
    refused(env, '--max-steps', 2, data=write(env, 'nu.jsonl', raw[:300] + b'\xff\xfe' + raw[300:]), words=['nu.jsonl: not UTF-8 text (byte 0xff at offset 300)'])

def _trains(env, data, steps=2):
    code, err, out = sft(env, '--max-steps', steps, data=data)
    assert code == 0, err
    return out

def test_sft_23_bom(env):
    a = _trains(env, write(env, 'bom.jsonl', b'\xef\xbb\xbf' + (env['w']/'data.jsonl').read_bytes()))
    b = _trains(env, env['w']/'data.jsonl')
    assert losses(a) == losses(b)   # the byte-order mark changes nothing

def test_sft_24_crlf(env):
    a = _trains(env, write(env, 'crlf.jsonl', (env['w']/'data.jsonl').read_bytes().replace(b'\n', b'\r\n')))
    assert losses(a) == losses(_trains(env, env['w']/'data.jsonl'))

def test_sft_25_duplicates(env):
    out = _trains(env, write(env, 'd.jsonl', jsonl([env['recs'][0]] * 8)))
    assert json.loads((out/'sft_config.json').read_text())['n_examples'] == 8 and len(losses(out)) == 2

def test_sft_26_unicode(env):
    recs = [{'instruction': '日本語 ✓ 🙂 ' + r['instruction'], 'output': 'é ü 🙂\u2028' + r['output']} for r in env['recs']]
    from lsnb.sft_data import read_records
    p = write(env, 'u.jsonl', jsonl(recs))
    assert read_records(p) == recs   # U+2028 inside a string is not a line break
    out = _trains(env, p); assert len(losses(out)) == 2

def test_sft_27_list_of_ints(env): refused(env, '--max-steps', 2, data=write(env, 'li.json', '[1, 2, 3]'), words=['record 0: a record must be a JSON object (dict)'])
def test_sft_28_empty_dict(env): refused(env, '--max-steps', 2, data=write(env, 'dj.json', '{}'), words=['dj.json: expected a JSON list of records'])

def test_sft_29_output_not_string(env):
    refused(env, '--max-steps', 2, data=write(env, 'on.jsonl', jsonl({'instruction': r['instruction'], 'output': 42} for r in env['recs'])),
            words=['record 0: output must be a string, got int'])

def test_sft_30_gz_not_gzip(env):
    refused(env, '--max-steps', 2, data=write(env, 'bg.jsonl.gz', (env['w']/'data.jsonl').read_bytes()), words=['bg.jsonl.gz: not a complete gzip file'])

def test_sft_31_truncated_gzip(env):
    refused(env, '--max-steps', 2, data=write(env, 'tg.jsonl.gz', gzip.compress((env['w']/'data.jsonl').read_bytes())[:200]),
            words=['tg.jsonl.gz: not a complete gzip file'])

# ---- options ----
def test_sft_32_max_steps_zero(env): refused(env, '--max-steps', 0, words=['--max-steps must be positive'])
def test_sft_33_max_steps_negative(env): refused(env, '--max-steps', -3, words=['--max-steps must be positive', '-3'])
def test_sft_34_batch_size_zero(env): refused(env, '--batch-size', 0, '--max-steps', 2, words=['--batch-size must be >= 1, got 0'])
def test_sft_35_grad_accum_zero(env): refused(env, '--grad-accum', 0, '--max-steps', 2, words=['--grad-accum must be >= 1, got 0'])
def test_sft_36_max_length_one(env): refused(env, '--max-length', 1, '--max-steps', 2, words=['--max-length must be >= 2'])

def test_sft_37_save_steps_beyond_run(env):
    code, err, out = sft(env, '--max-steps', 3, '--save-steps', 100)
    assert code == 0, err
    assert [p.name for p in out.glob('checkpoint-*')] == ['checkpoint-3'] and result(out)['global_step'] == 3
    from lsnb.sft import checkpoint_problem
    assert checkpoint_problem(out/'checkpoint-3') is None

def test_sft_38_out_is_file(env):
    f = write(env, 'afile', 'x')
    code, err, _ = sft(env, '--max-steps', 2, out=f)
    assert code == 2 and 'afile exists and is not a folder' in err and f.read_text() == 'x'

def test_sft_39_out_not_empty(env):
    d = env['w']/'busy'; d.mkdir(); (d/'k').write_text('k')
    code, err, _ = sft(env, '--max-steps', 2, out=d)
    assert code == 2 and 'is not empty: pass --overwrite' in err and (d/'k').read_text() == 'k'

def test_sft_40_resume_nothing(env): refused(env, '--max-steps', 2, '--resume', words=['--resume', 'holds no run to resume'])

def test_sft_41_resume_other_config(env, ref4):
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--resume', '--lr', 1e-3, '--label-smoothing', 0.2, out=ref4)
    assert code == 2 and '--lr 0.003 (saved) vs 0.001 (now)' in err and '--label-smoothing 0.0 (saved) vs 0.2 (now)' in err, err

def test_sft_42_label_smoothing_one(env):
    code, err, out = sft(env, '--label-smoothing', 1.0, '--max-steps', 2)
    assert code == 0, err
    assert all(torch.isfinite(torch.tensor(l)) for _, l in losses(out))
    # alpha = 1 is the uniform target: per token lse(z) - mean_v z_v, against PyTorch on fresh inputs
    from lsnb.kernel import linear_cross_entropy
    h, w, y = torch.randn(37, 16, dtype=torch.float64), torch.randn(50, 16, dtype=torch.float64), torch.randint(0, 50, (37,))
    z = h @ w.T
    ref = (torch.logsumexp(z, -1) - z.mean(-1)).mean()
    assert torch.allclose(linear_cross_entropy(h, w, y, label_smoothing=1.0, impl='torch'), ref, rtol=1e-10, atol=1e-12)

def test_sft_43_label_smoothing_negative(env): refused(env, '--label-smoothing', -0.1, '--max-steps', 2, words=['--label-smoothing must be in [0, 1], got -0.1'])
def test_sft_44_label_smoothing_nan(env): refused(env, '--label-smoothing', 'nan', '--max-steps', 2, words=['--label-smoothing must be a finite number'])
def test_sft_45_temperature_zero(env): refused(env, '--temperature', 0, '--max-steps', 2, words=['--temperature must be in (0, inf), got 0.0'])
def test_sft_46_temperature_nan(env): refused(env, '--temperature', 'nan', '--max-steps', 2, words=['--temperature must be a finite number'])
def test_sft_47_z_loss_inf(env): refused(env, '--z-loss', 'inf', '--max-steps', 2, words=['--z-loss must be a finite number, got inf'])
def test_sft_48_z_loss_negative(env): refused(env, '--z-loss', -1, '--max-steps', 2, words=['--z-loss must be in [0, inf), got -1.0'])
def test_sft_49_weight_decay_nan(env): refused(env, '--weight-decay', 'nan', '--max-steps', 2, words=['--weight-decay must be a finite number'])
def test_sft_50_weight_decay_negative(env): refused(env, '--weight-decay', -1, '--max-steps', 2, words=['--weight-decay must be in [0, inf)'])
def test_sft_51_max_grad_norm_nan(env): refused(env, '--max-grad-norm', 'nan', '--max-steps', 2, words=['--max-grad-norm must be a finite number'])
def test_sft_52_max_grad_norm_negative(env): refused(env, '--max-grad-norm', -1, '--max-steps', 2, words=['--max-grad-norm must be in [0, inf)'])
def test_sft_53_epochs_zero(env): refused(env, '--epochs', 0, words=['--epochs must be in (0, inf), got 0.0'])
def test_sft_54_lr_zero(env): refused(env, '--lr', 0, '--max-steps', 2, words=['--lr must be in (0, inf), got 0.0'])
def test_sft_55_seed_negative(env): refused(env, '--seed', -1, '--max-steps', 2, words=['--seed must be in [0, 2**32 - 1]', '-1'])
def test_sft_56_stop_at_zero(env): refused(env, '--stop-at', 0, '--max-steps', 3, words=['--stop-at must be >= 1'])
def test_sft_57_stop_at_negative(env): refused(env, '--stop-at', -2, '--max-steps', 3, words=['--stop-at must be >= 1'])
def test_sft_58_eval_limit_zero(env): refused(env, '--eval-task', 'arc_easy_200', '--eval-limit', 0, '--max-steps', 2, words=['--eval-limit must be >= 1'])
def test_sft_59_eval_task_unknown(env): refused(env, '--eval-task', 'bogus', '--max-steps', 2, words=["--eval-task bogus: unknown task 'bogus'"])
def test_sft_60_scheduler_unknown(env): refused(env, '--scheduler', 'bogus', '--max-steps', 2, words=["--scheduler must be one of linear, cosine", "got 'bogus'"])
def test_sft_61_save_total_limit_zero(env): refused(env, '--save-total-limit', 0, '--max-steps', 2, words=['--save-total-limit must be >= 1'])
def test_sft_62_resume_and_overwrite(env): refused(env, '--resume', '--overwrite', '--max-steps', 2, words=['--resume and --overwrite contradict each other'])

# ---- resume ----
def test_sft_63_resume_without_config(env):
    code, err, out = sft(env, '--max-steps', 4, '--save-steps', 2, '--stop-at', 2)
    assert code == 0, err
    (out/'sft_config.json').unlink(); before = sorted(p.name for p in out.rglob('*'))
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--resume', '--lr', 1e-3, out=out)
    assert code == 2 and 'holds no sft_config.json' in err and sorted(p.name for p in out.rglob('*')) == before

def test_sft_64_resume_corrupt_config(env):
    code, err, out = sft(env, '--max-steps', 4, '--save-steps', 2, '--stop-at', 2)
    (out/'sft_config.json').write_text('{"args": {"lr"')
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--resume', out=out)
    assert code == 2 and 'sft_config.json is unreadable' in err and '--overwrite' in err

def _falls_back(env, ref4, damage, why):
    code, err, out = interrupted(env, damage)
    assert code == 0, err
    assert f'checkpoint-2 is incomplete ({why}' in err and 'no complete checkpoint' in err and 'starting from step 0' in err, err
    assert same_weights(weights(out/'checkpoint-4'), weights(ref4/'checkpoint-4'))
    assert losses(out) == losses(ref4) and result(out)['train']['train_loss'] == result(ref4)['train']['train_loss']

def test_sft_65_checkpoint_without_optimizer(env, ref4): _falls_back(env, ref4, lambda c: (c/'optimizer.pt').unlink(), 'optimizer.pt is missing')
def test_sft_66_checkpoint_without_trainer_state(env, ref4): _falls_back(env, ref4, lambda c: (c/'trainer_state.json').unlink(), 'trainer_state.json is missing')

def test_sft_67_truncated_model(env, ref4):
    _falls_back(env, ref4, lambda c: (c/'model.safetensors').write_bytes((c/'model.safetensors').read_bytes()[:1000]), 'model.safetensors has 1000 bytes')

def test_sft_68_truncated_trainer_state(env, ref4):
    _falls_back(env, ref4, lambda c: (c/'trainer_state.json').write_text('{"glob'), 'trainer_state.json has')

def test_sft_69_empty_checkpoint_folder(env, ref4):
    _falls_back(env, ref4, lambda c: [p.unlink() for p in c.iterdir()], 'no completion marker')

def test_sft_70_resume_finished_run(env, ref4):
    snap = {p: p.read_bytes() for p in ref4.rglob('*') if p.is_file()}
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--resume', out=ref4)
    assert code == 0 and 'is finished (4 steps, result.json): nothing to resume' in err, err
    assert {p: p.read_bytes() for p in ref4.rglob('*') if p.is_file()} == snap   # not one step more, nothing rewritten
    assert [s for s, _ in losses(ref4)] == [1, 2, 3, 4]

def test_sft_71_killed_between_log_and_checkpoint(env, ref4):
    out = _out(env); shutil.copytree(ref4, out)
    shutil.rmtree(out/'checkpoint-4'); (out/'result.json').unlink()   # killed after step 4 was logged, before its checkpoint
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--resume', out=out)
    assert code == 0, err
    assert losses(out) == losses(ref4)   # steps 3 and 4 once each
    r, q = result(out), result(ref4)
    assert r['train']['train_loss'] == q['train']['train_loss'] == pytest.approx(sum(l for _, l in losses(ref4)) / 4, rel=1e-6)
    assert [h.get('loss') for h in r['log_history']] == [h.get('loss') for h in q['log_history']]

def test_sft_72_final_save_fails(env, monkeypatch):
    import transformers
    keep = [x for x in BASE if x != '--no-save-final']
    def boom(self, *a, **k): raise OSError(28, 'No space left on device')
    monkeypatch.setattr(transformers.PreTrainedTokenizerBase, 'save_pretrained', boom)
    code, err, out = sft(env, *keep, '--max-steps', 2, '--save-steps', 1, base=False)
    assert code == 1 and 'No space left on device' in err
    assert not (out/'final').exists() and not (out/'result.json').exists()   # no half-written final/ that looks like a model
    monkeypatch.undo()
    code, err, _ = sft(env, *keep, '--max-steps', 2, '--save-steps', 1, '--resume', base=False, out=out)
    assert code == 0, err
    ref = sft(env, *keep, '--max-steps', 2, '--save-steps', 1, base=False)[2]
    assert same_weights(weights(out/'final'), weights(ref/'final')) and (out/'final'/'tokenizer.json').exists()
    assert not list(out.glob('.final*')) and result(out)['train']['train_loss'] == result(ref)['train']['train_loss']

def test_sft_73_grad_accum_beyond_data(env):
    code, err, out = sft(env, '--grad-accum', 50, '--max-steps', 2)
    assert code == 0 and result(out)['global_step'] == 2

def test_sft_74_batch_size_beyond_data(env):
    code, err, out = sft(env, '--batch-size', 1000, '--max-steps', 2)
    assert code == 0 and result(out)['global_step'] == 2

def test_sft_75_unknown_role(env):
    refused(env, '--max-steps', 2, data=write(env, 'rt.jsonl', jsonl([{'messages': [{'role': 'tool', 'content': 'x'}, {'role': 'assistant', 'content': 'y'}]}])),
            words=["record 0: message 0 has unknown role 'tool'"])

def test_sft_76_chat_template_missing(env): refused(env, '--template', 'chat', '--max-steps', 2, words=['template="chat" but the tokenizer has no chat template'])

def test_sft_77_model_missing(env):
    code, err, out = sft(env, '--model', env['w']/'nomodel', '--max-steps', 2)
    assert code == 2 and 'nomodel' in err and not out.exists()

def test_sft_78_warmup_fractional_steps(env): refused(env, '--warmup', 2.5, '--max-steps', 4, words=['--warmup 2.5: a value >= 1 is a number of steps and must be whole'])

def test_sft_79_default_loss_diverges(env):
    code, err, out = sft(env, '--loss', 'default', '--lr', 1e6, '--max-steps', 6)
    assert code == 1 and 'training diverged at step' in err and not (out/'result.json').exists(), err

def test_sft_80_kill_during_checkpoint_save(env, ref4):
    "Killed while checkpoint-4 was being written (no marker yet): resume falls back to checkpoint-2 and ends as the uninterrupted run."
    out = _out(env); shutil.copytree(ref4, out)
    (out/'checkpoint-4'/'lsnb_complete.json').unlink(); (out/'result.json').unlink()
    code, err, _ = sft(env, '--max-steps', 4, '--save-steps', 2, '--save-total-limit', 2, '--resume', out=out)
    assert code == 0 and 'checkpoint-4 is incomplete (no completion marker' in err and 'resuming from checkpoint-2' in err, err
    assert same_weights(weights(out/'checkpoint-4'), weights(ref4/'checkpoint-4')) and losses(out) == losses(ref4)


# ---- kill trials (issue 17 "done when"): 3 here, 20 with tools/kill_trials_sft.py ----
def test_sft_kill_trials_3():
    sys.path.insert(0, str(ROOT/'tools'))
    import kill_trials_sft
    r = kill_trials_sft.trials(3, seed=1)
    c = r['counts']
    assert c['resumed'] == 3 and c['failed'] == 0 and c['identical'] == 3, r

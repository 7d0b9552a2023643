"""Reliability regression tests of issue 17 for `lsnb.kernel`, `lsnb.models` and `lsnb.evaluate`: one test per entry of
`catalogue_eval.json` (the test's name starts with the entry's id), each asserting the right result against an
independent reference or the precise error (its type and the words naming the argument or file)."""
import os
os.environ.setdefault('TRITON_INTERPRET', '1')   # the Triton kernel on the CPU, before lsnb.kernel is imported
import sys, json, math, struct, importlib.util, contextlib, io
from pathlib import Path
import numpy as np, pytest, torch
from lsnb.kernel import linear_cross_entropy as lce, reference_loss, KernelOptions, INTERPRETED
from rel_helpers import _raises, check_catalogue

IMPLS = ('torch', 'triton') if INTERPRETED else ('torch',)
CAT = Path(__file__).with_name('catalogue_eval.json')

def _close(a, b, tol=1e-5):
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol, equal_nan=True), (a, b)

def _data(N=5, d=8, V=30, seed=None):
    g = torch.Generator().manual_seed(seed if seed is not None else int(torch.randint(0, 2**31, ())))
    return torch.randn(N, d, generator=g), torch.randn(V, d, generator=g), torch.randint(0, V, (N,), generator=g), g

def test_catalogue_complete(): check_catalogue(CAT, globals())

# ---------------------------------------------------------------- kernel
def _masked_ref(x, w, b, t, a, ignore=-100):
    "float64 per-token loss smoothing over the unmasked classes (bias > -inf), an independent loop."
    z = x.double() @ w.double().T + b.double(); out = []
    for zi, ti in zip(z, t):
        U = zi > -math.inf; lp = zi - torch.logsumexp(zi[U], 0)
        out.append(torch.zeros((), dtype=torch.float64) if ti == ignore else -(1 - a) * lp[ti] - a * lp[U].sum() / U.sum())
    return torch.stack(out)

def _masked_case(a):
    x, w, _, g = _data(6, 8, 40)
    b = torch.randn(40, generator=g); b[torch.randperm(40, generator=g)[:9]] = -math.inf
    t = torch.where(b > -math.inf)[0][torch.randint(0, 31, (6,), generator=g)]
    return x, w, b, t

def _masked_check(impl, a):
    x, w, b, t = _masked_case(a)
    for red in ('mean', 'sum', 'none'):
        lv = [v.clone().requires_grad_() for v in (x, w, b)]; rv = [v.double().requires_grad_() for v in (x, w, b)]
        out = lce(*lv[:2], t, bias=lv[2], label_smoothing=a, reduction=red, impl=impl, chunk_size=4)
        ref = _masked_ref(*rv, t, a); ref = ref.mean() if red == 'mean' else ref.sum() if red == 'sum' else ref
        assert torch.isfinite(out).all(); _close(out, ref.detach())
        up = torch.rand(ref.shape, dtype=torch.float64) + 0.5
        (out.double() * up).sum().backward(); (ref * up).sum().backward()
        _close(lv[0].grad, rv[0].grad); _close(lv[1].grad, rv[1].grad)
        keep = b > -math.inf; _close(lv[2].grad[keep], rv[2].grad[keep])

def test_ker_01_masked_bias_alpha0_torch(): _masked_check('torch', 0.0)
def test_ker_02_masked_bias_alpha0_triton():
    for impl in IMPLS: _masked_check(impl, 0.0)
def test_ker_03_masked_bias_smoothing_over_unmasked():
    for impl in IMPLS:
        for a in (0.1, 1.0): _masked_check(impl, a)
    x, w, b, t = _masked_case(0.3)   # the reference function itself follows the same definition
    _close(reference_loss(x.double(), w.double(), t, bias=b.double(), label_smoothing=0.3, reduction='none'), _masked_ref(x, w, b, t, 0.3), 1e-10)

def test_ker_04_large_softcap_triton():
    x, w, t, _ = _data(5, 8, 50)
    for c in (1e4, 1e6, 1e8):
        ref = float(reference_loss(x.double(), w.double(), t, softcap=c))
        for impl in IMPLS: assert abs(float(lce(x, w, t, softcap=c, impl=impl)) - ref) <= 4 * 2**-24 * abs(ref), (impl, c)

def test_ker_05_double_backward():
    x, w, t, _ = _data()
    for impl in IMPLS:
        xx = x.clone().requires_grad_()
        _raises(lambda: torch.autograd.grad(lce(xx, w, t, impl=impl), xx, create_graph=True), RuntimeError, 'double backward is not supported')
        _raises(lambda: torch.autograd.grad(lce(xx, w, t, impl=impl, reduction='none').sum(), xx, create_graph=True), RuntimeError, 'double backward is not supported')

def _unchecked(impl):
    x, w, t, _ = _data(5, 8, 20); tt = t.clone(); tt[1] = 20; tt[3] = 10**9; tt[4] = -7
    xx = x.clone().requires_grad_()
    l = lce(xx, w, tt, impl=impl, reduction='none', check_target=False)
    assert l.isnan().tolist() == [False, True, False, True, True]
    _close(l[[0, 2]], reference_loss(x[[0, 2]], w, t[[0, 2]], reduction='none'))
    l.nan_to_num().sum().backward(); assert xx.grad.isnan().any(1).tolist() == [False, True, False, True, True]
    assert math.isnan(float(lce(x, w, tt, impl=impl, check_target=False)))

def test_ker_06_unchecked_target_triton():
    for impl in IMPLS: _unchecked(impl)
def test_ker_07_unchecked_target_torch(): _unchecked('torch')

def test_ker_08_nan_input():
    x, w, t, _ = _data(); x[1, 2] = math.nan
    for impl in IMPLS: _close(lce(x, w, t, impl=impl, reduction='none'), reference_loss(x, w, t, reduction='none'))
def test_ker_09_inf_input():
    x, w, t, _ = _data(); x[2, 0] = math.inf
    for impl in IMPLS: assert lce(x, w, t, impl=impl, reduction='none').isnan().tolist() == reference_loss(x, w, t, reduction='none').isnan().tolist()
def test_ker_10_empty_batch():
    _, w, _, _ = _data()
    for impl in IMPLS:
        x = torch.zeros(0, 8, requires_grad=True)
        l = lce(x, w, torch.zeros(0, dtype=torch.long), impl=impl); l.backward(); assert float(l) == 0.0 and x.grad.shape == (0, 8)
        assert lce(x, w, torch.zeros(0, dtype=torch.long), impl=impl, reduction='none').shape == (0,)

def _all_ignored(red):
    x, w, _, _ = _data()
    for impl in IMPLS:
        xx, ww = x.clone().requires_grad_(), w.clone().requires_grad_()
        l = lce(xx, ww, torch.full((5,), -100), impl=impl, reduction=red, label_smoothing=0.1)
        assert l.abs().sum().item() == 0.0 and (l.shape == ((5,) if red == 'none' else ()))
        l.sum().backward(); assert xx.grad.abs().sum() == 0 and ww.grad.abs().sum() == 0

def test_ker_11_all_ignored_mean(): _all_ignored('mean')
def test_ker_12_all_ignored_sum(): _all_ignored('sum')
def test_ker_13_all_ignored_none(): _all_ignored('none')
def test_ker_14_ignore_index_in_range():
    x, w, t, _ = _data(); t[:2] = 5
    for impl in IMPLS: _close(lce(x, w, t, impl=impl, ignore_index=5, label_smoothing=0.2), reference_loss(x, w, t, ignore_index=5, label_smoothing=0.2))
def test_ker_15_ignore_index_float(): _raises(lambda: lce(*_data()[:3], ignore_index=-100.0), TypeError, 'ignore_index must be an int')
def test_ker_16_ignore_index_bool(): _raises(lambda: lce(*_data()[:3], ignore_index=True), TypeError, 'ignore_index must be an int')
def test_ker_17_integer_input():
    _, w, t, _ = _data(); _raises(lambda: lce(torch.ones(5, 8, dtype=torch.long), w, t), TypeError, 'input dtype must be one of')
def test_ker_18_float_target():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w, t.float()), TypeError, 'target must be an integer tensor')
def test_ker_19_bool_target():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w, t > 3), TypeError, 'target must be an integer tensor')
def test_ker_20_small_integer_targets():
    x, w, t, _ = _data()
    for impl in IMPLS:
        for dt in (torch.int32, torch.uint8, torch.int16): _close(lce(x, w, t.to(dt), impl=impl), reference_loss(x, w, t))
def test_ker_21_weight_dtype_mismatch():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w.half(), t), TypeError, 'weight dtype torch.float16 differs from input dtype')
def test_ker_22_meta_tensors():
    x, w, t, _ = _data(); _raises(lambda: lce(x.to('meta'), w.to('meta'), t.to('meta')), ValueError, 'meta tensor')
def test_ker_23_hidden_size_mismatch():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w[:, :7], t), ValueError, 'input must have shape (..., d)', 'd = weight.shape[1] = 7')
def test_ker_24_target_shape():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w, t[:3]), ValueError, 'target must have shape input.shape[:-1]')
def test_ker_25_scalar_input():
    _, w, t, _ = _data(); _raises(lambda: lce(torch.tensor(1.0), w, t), ValueError, 'input must have shape (..., d)')
def test_ker_26_noncontiguous_weight():
    x, _, t, g = _data(); wt = torch.randn(8, 30, generator=g).t()
    for impl in IMPLS: _close(lce(x, wt, t, impl=impl, label_smoothing=0.1), reference_loss(x, wt, t, label_smoothing=0.1))
def test_ker_27_noncontiguous_input():
    _, w, t, g = _data(); xs = torch.randn(5, 16, generator=g)[:, ::2]
    for impl in IMPLS: _close(lce(xs, w, t, impl=impl), reference_loss(xs, w, t))
def test_ker_28_one_class():
    x, w, _, _ = _data(); t = torch.zeros(5, dtype=torch.long)
    for impl in IMPLS: _close(lce(x, w[:1], t, impl=impl, label_smoothing=0.3, z_loss=0.1), reference_loss(x, w[:1], t, label_smoothing=0.3, z_loss=0.1))
def test_ker_29_zero_hidden_size():
    _raises(lambda: lce(torch.randn(4, 0), torch.randn(20, 0), torch.zeros(4, dtype=torch.long)), ValueError, 'weight must be non-empty')
def test_ker_30_label_smoothing_negative(): _raises(lambda: lce(*_data()[:3], label_smoothing=-0.1), ValueError, 'label_smoothing must be a number in [0, 1]')
def test_ker_31_label_smoothing_above_one(): _raises(lambda: lce(*_data()[:3], label_smoothing=1.1), ValueError, 'label_smoothing must be a number in [0, 1]')
def test_ker_32_label_smoothing_nan(): _raises(lambda: lce(*_data()[:3], label_smoothing=math.nan), ValueError, 'label_smoothing must be a number in [0, 1]')
def test_ker_33_label_smoothing_numpy_scalar():
    x, w, t, _ = _data(); _close(lce(x, w, t, label_smoothing=np.float32(0.25)), reference_loss(x, w, t, label_smoothing=float(np.float32(0.25))))
    _raises(lambda: lce(x, w, t, label_smoothing=torch.tensor(0.1)), ValueError, 'label_smoothing must be a number')
def test_ker_34_softcap_zero(): _raises(lambda: lce(*_data()[:3], softcap=0), ValueError, 'softcap must be None or a finite number > 0')
def test_ker_35_softcap_negative(): _raises(lambda: lce(*_data()[:3], softcap=-1), ValueError, 'softcap must be None or a finite number > 0')
def test_ker_36_softcap_nan(): _raises(lambda: lce(*_data()[:3], softcap=math.nan), ValueError, 'softcap must be None or a finite number > 0')
def test_ker_37_softcap_bool(): _raises(lambda: lce(*_data()[:3], softcap=True), ValueError, 'softcap must be None or a finite number > 0, got True')
def test_ker_38_z_loss_negative(): _raises(lambda: lce(*_data()[:3], z_loss=-0.1), ValueError, 'z_loss must be a finite number >= 0')
def test_ker_39_z_loss_bool(): _raises(lambda: lce(*_data()[:3], z_loss=True), ValueError, 'z_loss must be a finite number >= 0, got True')
def test_ker_40_temperature_zero(): _raises(lambda: lce(*_data()[:3], temperature=0), ValueError, 'temperature must be a finite number > 0')
def test_ker_41_temperature_bool(): _raises(lambda: lce(*_data()[:3], temperature=True), ValueError, 'temperature must be a finite number > 0, got True')
def test_ker_42_bias_plus_inf():
    x, w, t, _ = _data(); b = torch.zeros(30); b[4] = math.inf
    _raises(lambda: lce(x, w, t, bias=b), ValueError, 'bias must be finite or -inf', 'found inf at index 4')
def test_ker_43_bias_nan():
    x, w, t, _ = _data(); b = torch.zeros(30); b[7] = math.nan
    _raises(lambda: lce(x, w, t, bias=b), ValueError, 'bias must be finite or -inf', 'at index 7')
def test_ker_44_bias_masks_everything():
    x, w, t, _ = _data(); _raises(lambda: lce(x, w, t, bias=torch.full((30,), -math.inf)), ValueError, 'bias is -inf for every class')
def test_ker_45_target_out_of_range_checked():
    x, w, t, _ = _data(); t[3] = 30
    for impl in IMPLS: _raises(lambda: lce(x, w, t, impl=impl), ValueError, 'target values must be in [0, 30)', 'found 30 at flat position 3')
def test_ker_46_batched_input():
    x, w, t, _ = _data(6)
    for impl in IMPLS: _close(lce(x.reshape(2, 3, 8), w, t.reshape(2, 3), impl=impl, reduction='none'), reference_loss(x, w, t, reduction='none').reshape(2, 3))
def test_ker_47_float64_triton():
    x, w, t, _ = _data(); _raises(lambda: lce(x.double(), w.double(), t, impl='triton'), (TypeError, ValueError), 'float64' if INTERPRETED else 'triton')
def test_ker_48_masked_target_is_infinite():
    x, w, t, _ = _data(); b = torch.zeros(30); b[t[0]] = -math.inf
    for impl in IMPLS:
        l = lce(x, w, t, bias=b, impl=impl, reduction='none')
        assert (l.isinf() == (t == t[0])).all() and torch.isfinite(l[t != t[0]]).all()
        _close(l, reference_loss(x, w, t, bias=b, reduction='none'))

# ---------------------------------------------------------------- models
from lsnb.models import read_gguf_metadata, check_gguf, convert_gguf, load_model, load_tokenizer, ensure_pad_token, _check_device

def _gguf(fn, arch='llama', tokens=True, shape=(4, 6)):
    import gguf
    w = gguf.GGUFWriter(str(fn), arch)
    w.add_bool('tokenizer.ggml.add_bos_token', False); w.add_uint32('tokenizer.ggml.bos_token_id', 1)
    if tokens: w.add_string('tokenizer.ggml.model', 'gpt2'); w.add_token_list(['<pad>', '<s>', '</s>', 'a', 'b'])
    w.add_tensor('t', np.arange(np.prod(shape), dtype=np.float32).reshape(shape))
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    return Path(fn)

def _raw(fn, kvs=(), n_tensors=0, infos=b'', version=3, n_kv=None, tail=b''):
    b = b'GGUF' + struct.pack('<IQQ', version, n_tensors, len(kvs) if n_kv is None else n_kv)
    for k, t, p in kvs: kb = k.encode(); b += struct.pack('<Q', len(kb)) + kb + struct.pack('<I', t) + p
    Path(fn).write_bytes(b + infos + tail); return Path(fn)

_ARCH = [('general.architecture', 8, struct.pack('<Q', 5) + b'llama')]
def _info(nd=2, dims=(4, 6), typ=0, offset=0): return struct.pack('<Q', 1) + b't' + struct.pack('<I', nd) + b''.join(struct.pack('<Q', x) for x in dims) + struct.pack('<IQ', typ, offset)

def test_mod_01_truncated_gguf_tensor_data(tmp_path):
    g = _gguf(tmp_path/'g.gguf'); data = g.read_bytes(); off = check_gguf(g)['data_offset']
    (tmp_path/'cut.gguf').write_bytes(data[:off + 50])
    _raises(lambda: convert_gguf(None, tmp_path/'cut.gguf', tmp_path/'cache', verbose=False), ValueError, 'cut.gguf: corrupt or truncated GGUF file', "tensor 't'", 'the file has')
    assert not (tmp_path/'cache').exists() or not any((tmp_path/'cache').iterdir())
def test_mod_02_truncated_gguf_header(tmp_path):
    g = _gguf(tmp_path/'g.gguf'); (tmp_path/'h.gguf').write_bytes(g.read_bytes()[:40])
    _raises(lambda: read_gguf_metadata(tmp_path/'h.gguf'), ValueError, 'h.gguf: corrupt or truncated GGUF file')
    _raises(lambda: convert_gguf(None, tmp_path/'h.gguf', tmp_path/'cache', verbose=False), ValueError, 'h.gguf: corrupt or truncated GGUF file')
def test_mod_03_crafted_string_length(tmp_path):
    f = _raw(tmp_path/'s.gguf', [('general.name', 8, struct.pack('<Q', 2**62) + b'abc')])
    _raises(lambda: read_gguf_metadata(f), ValueError, 's.gguf', "the value of 'general.name' needs 4611686018427387904 bytes")
def test_mod_04_crafted_array_length(tmp_path):
    f = _raw(tmp_path/'a.gguf', [('x', 9, struct.pack('<IQ', 6, 2**61))])
    _raises(lambda: read_gguf_metadata(f), ValueError, 'a.gguf', "the length of array 'x' is 2305843009213693952")
    f = _raw(tmp_path/'b.gguf', [('y', 9, struct.pack('<IQ', 8, 2**40))])
    _raises(lambda: read_gguf_metadata(f), ValueError, 'b.gguf', "the length of array 'y'")
def test_mod_05_crafted_kv_count(tmp_path):
    _raises(lambda: read_gguf_metadata(_raw(tmp_path/'k.gguf', n_kv=2**40)), ValueError, 'k.gguf', 'the key-value count is 1099511627776')
def test_mod_06_crafted_tensor_count(tmp_path):
    f = _raw(tmp_path/'n.gguf', _ARCH, n_tensors=2**40)
    _raises(lambda: convert_gguf(None, f, tmp_path/'c', verbose=False), ValueError, 'n.gguf', 'the tensor count is 1099511627776')
def test_mod_07_unknown_tensor_type(tmp_path):
    f = _raw(tmp_path/'t.gguf', _ARCH, 1, _info(typ=250), tail=bytes(200))
    _raises(lambda: convert_gguf(None, f, tmp_path/'c', verbose=False), ValueError, 't.gguf', "tensor 't' has unknown type 250")
def test_mod_08_too_many_dimensions(tmp_path):
    f = _raw(tmp_path/'d.gguf', _ARCH, 1, _info(nd=99, dims=[4] * 99), tail=bytes(200))
    _raises(lambda: check_gguf(f), ValueError, 'd.gguf', "tensor 't' has 99 dimensions")
def test_mod_09_tensor_offset_past_end(tmp_path):
    f = _raw(tmp_path/'o.gguf', _ARCH, 1, _info(offset=2**50), tail=bytes(200))
    _raises(lambda: check_gguf(f), ValueError, 'o.gguf', "tensor 't' (F32, shape [4, 6]) needs bytes up to")
def test_mod_10_duplicate_key(tmp_path):
    f = _raw(tmp_path/'kk.gguf', [('x', 4, struct.pack('<I', 1)), ('x', 4, struct.pack('<I', 2))])
    _raises(lambda: read_gguf_metadata(f), ValueError, 'kk.gguf', "duplicate key 'x'")
def test_mod_11_other_architecture(tmp_path):
    f = _gguf(tmp_path/'bert.gguf', arch='bert')
    _raises(lambda: convert_gguf(None, f, tmp_path/'c', verbose=False), ValueError, 'bert.gguf', "GGUF architecture 'bert' is not one transformers can convert", 'llama')
def test_mod_12_gguf_without_tokenizer(tmp_path):
    f = _gguf(tmp_path/'nt.gguf', tokens=False)
    _raises(lambda: convert_gguf(None, f, tmp_path/'c', verbose=False), ValueError, 'nt.gguf', 'holds no tokenizer')
def test_mod_13_bad_alignment(tmp_path):
    f = _raw(tmp_path/'al.gguf', _ARCH + [('general.alignment', 4, struct.pack('<I', 3))])
    _raises(lambda: convert_gguf(None, f, tmp_path/'c', verbose=False), ValueError, 'al.gguf', 'general.alignment must be a power of two, got 3')
def test_mod_14_empty_file(tmp_path):
    (tmp_path/'e.gguf').write_bytes(b''); _raises(lambda: convert_gguf(None, tmp_path/'e.gguf', tmp_path/'c', verbose=False), ValueError, 'e.gguf: not a GGUF file')
def test_mod_15_gguf_version_1(tmp_path):
    _raises(lambda: read_gguf_metadata(_raw(tmp_path/'v.gguf', version=1)), ValueError, 'v.gguf: GGUF version 1 is not supported')
def test_mod_16_unknown_value_type(tmp_path):
    _raises(lambda: read_gguf_metadata(_raw(tmp_path/'u.gguf', [('x', 99, b'')])), ValueError, 'u.gguf', "unknown GGUF value type 99 for key 'x'")

@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    from transformers.utils import logging as hf_logging; hf_logging.disable_progress_bar()
    from lsnb.testing import tiny_tokenizer, tiny_model
    d = tmp_path_factory.mktemp('models'); tok = tiny_tokenizer()
    for name, seed in (('A', 1), ('B', 2)): tiny_model(tok, seed=seed).save_pretrained(d/name); tok.save_pretrained(d/name)
    return d, tok

def test_mod_17_folder_without_config(tmp_path, tiny):
    tiny[1].save_pretrained(tmp_path/'m')
    _raises(lambda: load_model(str(tmp_path/'m'), device='cpu'), FileNotFoundError, "model folder", "has no config.json")
def test_mod_18_cuda_without_gpu(tiny):
    if torch.cuda.is_available(): pytest.skip('a CUDA GPU is present: the case needs a machine without one')
    _raises(lambda: load_model(str(tiny[0]/'A'), device='cuda'), ValueError, "device 'cuda': torch sees no CUDA GPU")
def test_mod_19_unknown_device(tiny):
    _raises(lambda: load_model(str(tiny[0]/'A'), device='tpu'), ValueError, "device 'tpu' is not a device torch knows")
def test_mod_20_model_is_a_file(tmp_path):
    (tmp_path/'m.gguf').write_bytes(b'GGUF')
    _raises(lambda: load_model(str(tmp_path/'m.gguf'), device='cpu'), ValueError, 'm.gguf', 'is a file, not a folder or Hub id', '--gguf-file')
def test_mod_21_cache_dir_is_a_file(tmp_path):
    g = _gguf(tmp_path/'g.gguf'); (tmp_path/'c').write_text('x')
    _raises(lambda: convert_gguf(None, g, tmp_path/'c', verbose=False), NotADirectoryError, 'cache_dir', 'is a file, not a folder')
def test_mod_22_truncated_safetensors(tmp_path, tiny):
    import shutil; m = tmp_path/'m'; shutil.copytree(tiny[0]/'A', m)
    st = m/'model.safetensors'; st.write_bytes(st.read_bytes()[:1000])
    _raises(lambda: load_model(str(m), device='cpu'), ValueError, f"cannot load the model from '{m}'")
def test_mod_23_folder_without_tokenizer(tmp_path, tiny):
    import shutil; m = tmp_path/'m'; shutil.copytree(tiny[0]/'A', m)
    for f in m.iterdir():
        if 'token' in f.name or f.name == 'special_tokens_map.json': f.unlink()
    _raises(lambda: load_model(str(m), device='cpu'), ValueError, f"cannot load the tokenizer from '{m}'")
def test_mod_24_tokenizer_without_pad(tiny):
    from lsnb.testing import tiny_tokenizer
    t = tiny_tokenizer(); t.pad_token = None
    assert ensure_pad_token(t).pad_token == t.eos_token and t.pad_token_id == t.eos_token_id
def test_mod_25_tokenizer_without_pad_or_eos():
    class NoPad: pad_token_id = eos_token = None
    _raises(lambda: ensure_pad_token(NoPad()), ValueError, 'neither a padding nor an EOS token')
def test_mod_26_unknown_dtype(tiny):
    _raises(lambda: load_model(str(tiny[0]/'A'), device='cpu', dtype='float64'), ValueError, "unknown dtype 'float64'")
def test_mod_27_gguf_file_is_a_folder(tmp_path):
    _raises(lambda: load_model(gguf_file=str(tmp_path), device='cpu'), FileNotFoundError, 'GGUF file not found')
def test_check_gguf_agrees_with_gguf_reader(tmp_path):
    import gguf
    g = _gguf(tmp_path/'g.gguf', shape=(3, 5)); info = check_gguf(g); r = gguf.GGUFReader(str(g))
    assert [(t['name'], t['shape']) for t in info['tensors']] == [(t.name, [int(s) for s in t.shape]) for t in r.tensors]
    assert info['data_offset'] == r.data_offset

# ---------------------------------------------------------------- evaluate
from lsnb.evaluate import run_eval, EvalConfig
from lsnb.data import load_task, items_to_jsonl
import lsnb.evaluate as E

@pytest.fixture
def loads(monkeypatch):
    "Counts the model loads of `run_eval` (a check must fail before any)."
    n = {'load': 0}; orig = E.load_model
    def counting(*a, **k): n['load'] += 1; return orig(*a, **k)
    monkeypatch.setattr(E, 'load_model', counting); return n

BASE = dict(tasks='arc_easy_200', method='option', limit=5, device='cpu', n_boot=0, progress=False, verbose=False, batch_size=4)
def _ev(model, out, **kw): return run_eval(model=str(model), out=str(out), **{**BASE, **kw})
def _interrupted(model, out, **kw):
    "A run stopped after its records were written, before its summary."
    s = _ev(model, out, **kw); next(Path(out).glob('summary.*.json')).unlink(); return s
def _recs(out, task='arc_easy_200', tag='option.0shot'):
    return sorted((json.loads(l) for l in (Path(out)/f'{task}.{tag}.jsonl').read_text().splitlines() if l.strip()), key=lambda r: r['id'])

def _refused(f, loads, *words):
    msg = _raises(f, ValueError, 'holds a run of another configuration', 'rerun with --overwrite', 'new --out', *words)
    assert loads['load'] == 0, 'refused only after loading the model'
    return msg

def test_ev_01_other_model_into_interrupted_out(tmp_path, tiny, loads):
    d = tiny[0]; _interrupted(d/'A', tmp_path/'o'); loads['load'] = 0
    _refused(lambda: _ev(d/'B', tmp_path/'o'), loads, "model: saved 'A ", "now 'B ")
    s = _ev(d/'B', tmp_path/'o', overwrite=True); ref = _ev(d/'B', tmp_path/'ref')
    assert _recs(tmp_path/'o') == _recs(tmp_path/'ref') and s['tasks'] == {k: dict(v, seconds=s['tasks'][k]['seconds']) for k, v in ref['tasks'].items()}
def test_ev_02_weights_replaced_in_place(tmp_path, tiny, loads):
    import shutil; from lsnb.testing import tiny_model
    m = tmp_path/'m'; shutil.copytree(tiny[0]/'A', m); _interrupted(m, tmp_path/'o')
    tiny_model(tiny[1], seed=9).save_pretrained(m); loads['load'] = 0
    _refused(lambda: _ev(m, tmp_path/'o'), loads, "model: saved 'm ")
def test_ev_03_new_seed_with_shots(tmp_path, tiny, loads):
    _interrupted(tiny[0]/'A', tmp_path/'o', shots=1); loads['load'] = 0
    _refused(lambda: _ev(tiny[0]/'A', tmp_path/'o', shots=1, seed=7), loads, 'seed: saved 0, now 7')
def test_ev_04_edited_task_file(tmp_path, tiny, loads):
    items = load_task('arc_easy_200', limit=5); f = tmp_path/'task.jsonl'; f.write_text(items_to_jsonl(items))
    _interrupted(tiny[0]/'A', tmp_path/'o', tasks=str(f))
    for it in items: it.answer = (it.answer + 1) % len(it.choices)
    f.write_text(items_to_jsonl(items)); loads['load'] = 0
    _refused(lambda: _ev(tiny[0]/'A', tmp_path/'o', tasks=str(f)), loads, 'data of task: saved')
def test_ev_05_new_dtype(tmp_path, tiny, loads):
    _interrupted(tiny[0]/'A', tmp_path/'o'); loads['load'] = 0
    _refused(lambda: _ev(tiny[0]/'A', tmp_path/'o', dtype='bfloat16'), loads, "dtype: saved 'torch.float32', now 'torch.bfloat16'")
def test_ev_06_n_boot_one(tmp_path, tiny, loads):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', n_boot=1), ValueError, 'n_boot must be an integer >= 2, got 1'); assert loads['load'] == 0
def test_ev_07_n_bins_zero(tmp_path, tiny, loads):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', n_bins=0), ValueError, 'n_bins must be a positive int, got 0'); assert loads['load'] == 0
def test_ev_08_limit_zero(tmp_path, tiny, loads):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', limit=0), ValueError, 'limit must be a positive int, got 0'); assert loads['load'] == 0
def test_ev_09_limit_negative(): _raises(lambda: EvalConfig(limit=-1), ValueError, 'limit must be a positive int, got -1')
def test_ev_10_shots_negative(): _raises(lambda: EvalConfig(shots=-1), ValueError, 'shots must be a non-negative int, got -1')
def test_ev_11_batch_size_zero(): _raises(lambda: EvalConfig(batch_size=0), ValueError, 'batch_size must be a positive int, got 0')
def test_ev_12_out_is_a_file(tmp_path, tiny, loads):
    (tmp_path/'f').write_text('x')
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'f'), NotADirectoryError, f'--out {tmp_path/"f"}: is a file, not a folder'); assert loads['load'] == 0
def test_ev_13_out_inside_a_file(tmp_path, tiny, loads):
    (tmp_path/'f').write_text('x')
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'f'/'sub'), NotADirectoryError, '--out', 'is a file, not a folder'); assert loads['load'] == 0
def test_ev_14_out_not_writable(tmp_path, tiny, loads):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    target = ro/'out' if not os.access(ro, os.W_OK) else Path('/proc/lsnb-out')   # root writes anywhere but /proc
    try: _raises(lambda: _ev(tiny[0]/'A', target), PermissionError, f'--out {target}: cannot write there')
    finally: ro.chmod(0o700)
    assert loads['load'] == 0
def test_ev_15_task_file_duplicate_ids(tmp_path, tiny, loads):
    items = load_task('arc_easy_200', limit=3); f = tmp_path/'dup.jsonl'; f.write_text(items_to_jsonl(items + items[:1]))
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', tasks=str(f)), ValueError, 'dup.jsonl', 'ids must be unique', repr(items[0].id)); assert loads['load'] == 0
def test_ev_16_empty_task_file(tmp_path, tiny, loads):
    f = tmp_path/'e.jsonl'; f.write_text('')
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', tasks=str(f)), ValueError, 'e.jsonl', 'has no items'); assert loads['load'] == 0
def test_ev_17_shots_with_task_file(tmp_path, tiny, loads):
    f = tmp_path/'t.jsonl'; f.write_text(items_to_jsonl(load_task('arc_easy_200', limit=3)))
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', tasks=str(f), shots=1), ValueError, 'shots', 't.jsonl', 'has no few-shot split'); assert loads['load'] == 0
def test_ev_18_cuda_without_gpu(tmp_path, tiny, loads):
    if torch.cuda.is_available(): pytest.skip('a CUDA GPU is present: the case needs a machine without one')
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', device='cuda'), ValueError, "device 'cuda': torch sees no CUDA GPU"); assert loads['load'] == 0
def test_ev_19_unknown_device(tmp_path, tiny, loads):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', device='tpu'), ValueError, "device 'tpu'"); assert loads['load'] == 0

def _cli(argv):
    from lsnb.cli import main
    with contextlib.redirect_stderr(io.StringIO()) as e, contextlib.redirect_stdout(io.StringIO()): rc = main(['eval', '--model', 'never/loaded', *argv])
    return rc, e.getvalue().strip().splitlines()

def test_ev_20_unknown_task():
    rc, lines = _cli(['--tasks', 'no_such_task']); assert rc == 2 and "unknown task 'no_such_task'" in lines[0]
def test_ev_21_unknown_language():
    rc, lines = _cli(['--tasks', 'm_arc', '--languages', 'xx']); assert rc == 2 and "m_arc: unknown language(s) ['xx']" in lines[0]
def test_ev_22_language_of_no_task():
    rc, lines = _cli(['--tasks', 'arc_easy_200', '--languages', 'de']); assert rc == 2 and "languages: ['de'] are not languages of any task" in lines[0]
def test_ev_23_empty_task_list(): _raises(lambda: EvalConfig(tasks=','), ValueError, 'tasks: no tasks given')
def test_ev_24_same_task_twice(tmp_path, tiny):
    s = _ev(tiny[0]/'A', tmp_path/'o', tasks='arc_easy_200,arc_easy_200'); r = _ev(tiny[0]/'A', tmp_path/'r')
    assert list(s['tasks']) == ['arc_easy_200'] and _recs(tmp_path/'o') == _recs(tmp_path/'r')
def test_ev_25_limit_above_task_size(tmp_path, tiny):
    f = tmp_path/'t.jsonl'; f.write_text(items_to_jsonl(load_task('arc_easy_200', limit=3)))
    assert _ev(tiny[0]/'A', tmp_path/'o', tasks=str(f), limit=10**6)['tasks']['t']['n'] == 3
def test_ev_26_seed_negative(): _raises(lambda: EvalConfig(seed=-1), ValueError, 'seed must be a non-negative int, got -1')
def test_ev_27_n_bins_fraction(): _raises(lambda: EvalConfig(n_bins=1.5), ValueError, 'n_bins must be a positive int, got 1.5')
def test_ev_28_missing_model_folder(tmp_path):
    _raises(lambda: _ev(tmp_path/'nope', tmp_path/'o'), FileNotFoundError, 'model folder not found', 'nope')
def test_ev_29_unknown_dtype(tmp_path, tiny, loads):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', dtype='int8'), ValueError, "unknown dtype 'int8'"); assert loads['load'] == 0
def test_ev_30_chat_template_missing(tmp_path, tiny):
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o', template='chat'), ValueError, 'template="chat" but this tokenizer has no chat template')
def test_ev_31_interrupted_run_kill_trials(tmp_path):
    spec = importlib.util.spec_from_file_location('kill_trials_eval', Path(__file__).parents[2]/'tools'/'kill_trials_eval.py')
    kt = importlib.util.module_from_spec(spec); spec.loader.exec_module(kt)
    res = kt.run_trials(3, limit=4, seed=int(np.random.default_rng().integers(1 << 30)), work=tmp_path)
    c = res['counts']
    assert c['killed'] >= 1 and c['resumed'] == c['identical'] == 3 and c['duplicate_records'] == 0, res
def test_ev_32_rerun_finished_run(tmp_path, tiny):
    s1 = _ev(tiny[0]/'A', tmp_path/'o'); before = (tmp_path/'o'/'arc_easy_200.option.0shot.jsonl').read_text()
    s2 = _ev(tiny[0]/'A', tmp_path/'o')
    assert (tmp_path/'o'/'arc_easy_200.option.0shot.jsonl').read_text() == before
    assert {k: {a: b for a, b in v.items() if a != 'seconds'} for k, v in s1['tasks'].items()} == {k: {a: b for a, b in v.items() if a != 'seconds'} for k, v in s2['tasks'].items()}
def test_ev_33_larger_limit_resumes(tmp_path, tiny):
    _ev(tiny[0]/'A', tmp_path/'o', limit=3); s = _ev(tiny[0]/'A', tmp_path/'o', limit=6); _ev(tiny[0]/'A', tmp_path/'r', limit=6)
    assert s['tasks']['arc_easy_200']['n'] == 6 and _recs(tmp_path/'o') == _recs(tmp_path/'r')
def test_ev_34_records_without_fingerprint(tmp_path, tiny, loads):
    _ev(tiny[0]/'A', tmp_path/'o'); (tmp_path/'o'/'run.option.0shot.json').unlink(); loads['load'] = 0
    _raises(lambda: _ev(tiny[0]/'A', tmp_path/'o'), ValueError, 'holds records of an unknown configuration', '--overwrite'); assert loads['load'] == 0
def test_ev_35_loaded_model_fingerprint(tmp_path, tiny):
    from lsnb.testing import tiny_model
    tok = tiny[1]; a, b = tiny_model(tok, seed=1), tiny_model(tok, seed=2)
    run_eval(out=str(tmp_path/'o'), loaded=(a, tok), name='m', **BASE); (tmp_path/'o'/'summary.option.0shot.json').unlink()
    _raises(lambda: run_eval(out=str(tmp_path/'o'), loaded=(b, tok), name='m', **BASE), ValueError, "model: saved 'm weights ", 'rerun with --overwrite')
    run_eval(out=str(tmp_path/'o'), loaded=(a, tok), name='m', **BASE)   # the same weights resume

"""The real-head predictions of the controlled V/d design (issue 14; nbs/experiments/07_vd_controlled.ipynb), on the GPU.

    python tools/experiments_gpu/vd_predictions.py --config tools/experiments_gpu/gemma-3-270m-v2.json \\
        --model-dir MODELS --cache-dir CACHE --items ITEMS.jsonl.gz --sft-records alpaca_data.json.gz \\
        --out nbs/experiments/results/vd-controlled/real_head.json \\
        --subvocab-out nbs/experiments/results/vd-controlled/subvocabs.npz
    python tools/experiments_gpu/vd_predictions.py --check     # seconds: a tiny random model (CUDA if there, else CPU) against lsnb.theory

For every cell of the design (a sub-vocabulary V′ at fixed d, a rank-r bottleneck at fixed V) and for target tokens of
the study's held-out SFT text at their measured hidden-state norms R = ||h||, it computes what `real_head_predictions`
of the design notebook computes with `lsnb.theory` (NumPy, CPU: minutes for a 262,144-row head), here with the same
algorithms in torch on the GPU (float64):

- `achievable`: the exact achievable confidence max_{||h|| <= R} softmax(W_c h)_y (`max_confidence_in_ball`);
- `pairwise_cap`: the Cauchy-Schwarz cap (`pairwise_norm_cap`);
- `ls_optimum`: the confidence of the label-smoothed optimum in the same ball (`ball_optimum` with alpha);
- `realised`: softmax(W_c h)_y at the measured h itself (the base model restricted to the cell's head);
- the cell head's median row norm (for the rank cells: the real rows of W_r, replacing the isotropic estimate),
  the share of the head's energy a rank keeps, the singular values of the head, the dropped share of targets per V′.

W_c is W[V′] (V axis) or the Eckart-Young head W_r = U_r S_r V_r^T (d axis), solved in its r-dimensional form U_r S_r
(the same problem: V_r^T maps the ball of R^d onto the ball of R^r). V′ is chosen as the design says (lsnb.vocab:
`sft_target_counts` over every record not held out, `required_ids` of the study's items, `choose_subvocab`), and can be
saved for the runs (--subvocab-out) or read back (--subvocabs). The JSON is written atomically with the device, the commit
($LSNB_COMMIT in a copy without .git), the command line and the GGUF's SHA-256. Exit status 2 on a bad argument or file.
"""
from __future__ import annotations
import argparse, json, math, os, sys, time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES, RANKS = (8192, 32768, 131072, 262144), (64, 128, 256, 640)


# ---- the solvers: lsnb.theory's algorithms in torch ----------------------------------------------------------------

def log_odds(Z, y):
    "log(p_y / (1 - p_y)) = z_y - lse_{j != y} z_j of logits Z (k, V), float64 (`lsnb.theory.log_odds`)."
    import torch
    Z = Z.double().clone(); k = torch.arange(len(y), device=Z.device)
    zy = Z[k, y].clone(); Z[k, y] = -math.inf
    return zy - torch.logsumexp(Z, 1)


def ball_optimum(W, y, R, alpha=0.0, steps=3000, tol=1e-10):
    "`lsnb.theory.ball_optimum` in torch (any device): `(H (k, d), P (k, V), iterations)`; W (V, d), y (k,) long, R (k,) float64."
    import torch
    V, d = W.shape
    k = torch.arange(len(y), device=W.device)
    R = R.to(W.device, torch.float64)
    hard = alpha == 0
    Q = torch.full((len(y), V), alpha / V, dtype=torch.float64, device=W.device); Q[k, y] += 1 - alpha
    def f_grad(X, grad=True):
        Z = (X.to(W.dtype) @ W.T).double()
        if hard: zy = Z[k, y].clone(); Z[k, y] = -math.inf
        lse = torch.logsumexp(Z, 1)
        f = lse - zy if hard else lse - (Q * Z).sum(1)
        if not grad: return f, None
        P = torch.exp(Z - lse[:, None])
        return f, ((P - Q).to(W.dtype) @ W).double()
    def proj(X):
        n = X.norm(dim=1, keepdim=True)
        return X * torch.clamp(R[:, None] / n.clamp(min=1e-300), max=1.0)
    u = (W[y] - W.mean(0)).double()
    X = proj(u * (R[:, None] / u.norm(dim=1, keepdim=True).clamp(min=1e-300)))
    fX, _ = f_grad(X, grad=False)
    Yk, t = X.clone(), torch.ones(len(y), dtype=torch.float64, device=W.device)
    eta = torch.full((len(y),), 1.0 / max(float(R.max()), 1e-12), dtype=torch.float64, device=W.device)
    it = 0
    for it in range(1, steps + 1):
        fY, G = f_grad(Yk)
        while True:
            Xn = proj(Yk - eta[:, None] * G); D = Xn - Yk
            fn, _ = f_grad(Xn, grad=False)
            bad = fn > fY + (G * D).sum(1) + (D * D).sum(1) / (2 * eta) + 1e-12 * fY.abs()
            if not bool(bad.any()) or float(eta.min()) < 1e-30: break
            eta = torch.where(bad, eta / 2, eta)
        tn = (1 + torch.sqrt(1 + 4 * t * t)) / 2
        restart = fn > fX
        mom = torch.where(restart, torch.zeros_like(t), (t - 1) / tn)[:, None]
        Yk = Xn + mom * (Xn - X)
        t = torch.where(restart, torch.ones_like(t), tn)
        done = (fX - fn).abs() <= tol * torch.clamp(fn.abs(), min=1.0)
        X, fX, eta = torch.where((fn <= fX)[:, None], Xn, X), torch.minimum(fn, fX), eta * 1.5
        if bool(done.all()): break
    X = X.to(W.dtype)
    Z = (X @ W.T).double()
    return X, torch.exp(Z - torch.logsumexp(Z, 1, keepdim=True)), it


def pairwise_cap_log_odds(W, y, R, chunk=64):
    "Log-odds of `lsnb.theory.pairwise_norm_cap`: -lse_{j != y}(-R ||w_y - w_j||), in torch."
    import torch
    R = R.to(W.device, torch.float64)
    sq = (W.double() ** 2).sum(1)
    out = torch.empty(len(y), dtype=torch.float64, device=W.device)
    for s in range(0, len(y), chunk):
        yy = y[s:s + chunk]
        D2 = sq[yy][:, None] + sq[None] - 2 * (W[yy] @ W.T).double()
        D = torch.sqrt(D2.clamp(min=0)); D[torch.arange(len(yy), device=W.device), yy] = math.inf
        out[s:s + chunk] = -torch.logsumexp(-R[s:s + chunk, None] * D, 1)
    return out


# ---- the predictions -------------------------------------------------------------------------------------------------

def _expit(x): return (1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))).tolist()


def cell(axis, size, Wc, yc, Hc, R, alpha, steps, V_cell, **extra):
    "The predictions of one cell: head W_c (V_c, d_c), local targets yc (k,), the head's inputs Hc (k, d_c), norm budgets R = ||h|| (k,)."
    import torch
    from lsnb.theory import ls_max_confidence
    t0 = time.time()
    Xa, _, ia = ball_optimum(Wc, yc, R, 0.0, steps)
    la = log_odds(Xa @ Wc.T, yc)
    lc = pairwise_cap_log_odds(Wc, yc, R)
    Xl, Pl, il = ball_optimum(Wc, yc, R, alpha, steps)
    ll = log_odds(Xl @ Wc.T, yc)
    lr = log_odds(Hc @ Wc.T, yc)
    k = torch.arange(len(yc), device=Wc.device)
    c = lambda x: x.cpu().numpy()
    return dict(axis=axis, size=int(size), V=int(V_cell), d=int(Wc.shape[1]), alpha=alpha, cap=float(ls_max_confidence(V_cell, alpha)),
                achievable=_expit(c(la)), pairwise_cap=_expit(c(lc)), ls_optimum=c(Pl[k, yc]).tolist(), realised=_expit(c(lr)),
                achievable_log_odds=c(la).tolist(), pairwise_log_odds=c(lc).tolist(), ls_log_odds=c(ll).tolist(), realised_log_odds=c(lr).tolist(),
                row_norm_p50=float(Wc.norm(dim=1).median()), iterations=dict(achievable=ia, ls_optimum=il), steps=steps,
                solve_s=round(time.time() - t0, 2), **extra)


def head_predictions(W,          # the output head (V, d), a torch tensor on the device to compute on
                     subs:dict,  # {|V′|: lsnb.vocab.SubVocab} of the V axis
                     ranks,      # the r of the d axis
                     ys,         # global target ids (k,), in every V′
                     H,          # hidden states (k, d) the head received for those targets (R = their norms)
                     alpha=0.1, steps=300):
    "(cells, singular values of W): the predictions of every cell, as `real_head_predictions` of the design notebook, plus the realised values."
    import torch
    dev = W.device
    W = W.detach().double(); H = torch.as_tensor(H).to(dev, torch.float64); ys = torch.as_tensor(ys).to(dev, torch.long)
    V, d = W.shape
    R, out = H.norm(dim=1), []
    for size in sorted(subs):
        sub = subs[size]
        yc = sub.lookup.to(dev)[ys]
        if bool((yc < 0).any()): raise ValueError(f'ys: {int((yc < 0).sum())} targets are outside the {size}-token V′')
        ids = sub.ids.to(dev)
        out.append(cell('V', size, W.index_select(0, ids), yc, H, R, alpha, steps, len(sub)))
    ev, vec = torch.linalg.eigh(W.T @ W)                 # W^T W = V S^2 V^T: a d x d problem (an SVD of the V x d head is slow on a GPU)
    s2, Vh = ev.flip(0).clamp(min=0), vec.flip(1).T       # descending; rows of Vh: the right singular vectors
    S = s2.sqrt()
    for r in ranks:
        if not 1 <= r <= min(V, d): raise ValueError(f'ranks: r={r} is not in [1, min(V, d)={min(V, d)}]')
        P = Vh[:r].T                                   # (d, r): W_r h = (W P)(P^T h) with W P = U_r S_r
        out.append(cell('d', r, W @ P, ys, H @ P, R, alpha, steps, V, energy_kept=float(s2[:r].sum() / s2.sum())))   # R: the norm of h, not of P^T h
    return out, S.cpu().numpy().tolist()


def measure_positions(model, rows, sub, n, seed=0, batch_size=4):
    "(global targets (k,), the hidden states (k, d) the head received for them): k = n positions of `rows`, seeded, whose target is in `sub`."
    import torch
    from lsnb.models import find_output_head
    from lsnb.sft_data import SFTCollator
    head = find_output_head(model)
    if head.softcap: raise ValueError(f'the model soft-caps its logits (final_logit_softcapping={head.softcap}): they are not W h')
    dev = next(model.parameters()).device
    seen, ys, hs = {}, [], []
    hook = head.module.register_forward_pre_hook(lambda m, a: seen.__setitem__('h', a[0]))
    try:
        col = SFTCollator(0)
        with torch.no_grad():
            for b in range(0, len(rows), batch_size):
                batch = col(rows[b:b + batch_size]); lab = batch.pop('labels')[:, 1:]; batch.pop('num_tokens')
                model(**{k: v.to(dev) for k, v in batch.items()}, use_cache=False)
                h = seen.pop('h')[:, :-1].float() * head.scale
                keep = lab != -100
                keep &= sub.lookup[lab.clamp(min=0)] >= 0
                ys.append(lab[keep]); hs.append(h[keep.to(h.device)].cpu())
    finally: hook.remove()
    ys, hs = torch.cat(ys), torch.cat(hs)
    if len(ys) < n: raise ValueError(f'--positions {n}: the rows have only {len(ys)} targets in the smallest V′')
    pick = np.sort(np.random.default_rng(seed).choice(len(ys), n, replace=False))
    return ys[pick], hs[pick], int(len(ys))


_STATE = {}
def _count_chunk(ix):
    from lsnb.sft_data import build_examples
    from lsnb.vocab import count_tokens
    cfg, tok, records, V = _STATE['args']
    ex = build_examples([records[int(i)] for i in ix], tok, cfg.max_length, cfg.template, drop_empty=True, progress=False)
    return count_tokens((e['labels'] for e in ex), V)


def target_counts(cfg, tok, records, V, workers=1, counts=True):
    "`lsnb.vocab.sft_target_counts`, tokenising in `workers` forked processes: (counts (V,) or None if not `counts`, held-out rows)."
    from lsnb.vocab import heldout_split, sft_target_counts
    from lsnb.sft_data import build_examples, pack_examples
    if counts and workers <= 1: return sft_target_counts(cfg, tok, records, V)
    rest, held_ix = heldout_split(cfg, len(records))
    c = None
    if counts:
        import multiprocessing as mp
        _STATE['args'] = (cfg, tok, records, V)
        os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
        try:
            with mp.get_context('fork').Pool(workers) as pool: c = np.sum(pool.map(_count_chunk, np.array_split(rest, workers * 4)), axis=0)
        finally: _STATE.clear()
    held = build_examples([records[int(i)] for i in held_ix], tok, cfg.max_length, cfg.template, drop_empty=True, progress=False) if len(held_ix) else []
    return c, pack_examples(held, cfg.max_length)


def choose_cells(cfg, tok, records, items, sizes, V, workers=1, infeasible='error'):
    "({|V′|: SubVocab}, counts, held-out rows, must_include, deviations) of the design. A size below |must_include| is an error, or (`infeasible='replace'`, the design's rule) replaced by |must_include|."
    from lsnb.vocab import required_ids, choose_subvocab
    from lsnb.scoring import get_method
    reqs = tuple(dict.fromkeys(get_method(m).request for m in cfg.methods))
    must = required_ids(tok, items['english'] if isinstance(items, dict) and 'english' in items else items, cfg.template, reqs)
    if max(sizes) > V: raise ValueError(f'--sizes: {max(sizes)} exceeds the vocabulary V={V}')
    if int(must.max()) >= V: raise ValueError(f"the tokenizer has special or option token ids up to {int(must.max())}, beyond V={V}")
    small, deviations = [x for x in sizes if x < len(must)], []
    if small and infeasible != 'replace':
        raise ValueError(f'--sizes: V′ of {small} tokens are below the {len(must)} tokens evaluation needs (must_include); the design replaces such a '
                         f'cell by the smallest feasible size, {len(must)} (--infeasible replace, a deviation to list), or choose other --sizes')
    if small:
        deviations.append(f'the V′ sizes {small} are below the {len(must)} tokens evaluation needs (must_include): replaced by {len(must)}')
        sizes = sorted({len(must) if x < len(must) else x for x in sizes})
    counts, held = target_counts(cfg, tok, records, V, workers)
    return {s: choose_subvocab(counts, must, s) for s in sizes}, counts, held, must, deviations


def predictions(model,            # the base model (its head: `lsnb.models.find_output_head`)
                subs:dict,        # {|V′|: SubVocab} of the V axis
                rows:list,        # held-out packed rows the positions are drawn from
                ranks,            # the r of the d axis
                alpha=0.1, n_positions=32, steps=300, seed=0, n_rows=16,
                counts=None,      # the SFT target counts V′ was chosen from (for the kept shares), if known
                device=None):     # where to solve (default: the head's device)
    "Everything the JSON holds but the provenance: the V′, the positions measured, every cell's predictions, timings."
    import torch
    from lsnb.models import find_output_head
    from lsnb.vocab import subvocab_sha256
    W = find_output_head(model).weight
    V, d = W.shape
    bad = [s for s, sub in subs.items() if sub.V != V]
    if bad: raise ValueError(f"the V′ of sizes {bad} are sub-vocabularies of another vocabulary than the head's V={V}")
    t0 = time.time()
    ys, H, n_in = measure_positions(model, rows[:n_rows], subs[min(subs)], n_positions, seed)
    t1 = time.time()
    Wd = W.detach().to(device or W.device)
    cells, S = head_predictions(Wd, subs, ranks, ys, H, alpha, steps)
    if Wd.is_cuda: torch.cuda.synchronize()
    t2 = time.time()
    lab = torch.tensor([t for r in rows for t in r['labels'] if t != -100])
    vinfo = {str(s): dict(ids_sha256=subvocab_sha256(sub), n=len(sub),
                          train_target_share=None if counts is None else float(counts[sub.ids.numpy()].sum() / counts.sum()),
                          heldout_target_share=float((sub.lookup[lab] >= 0).double().mean()) if len(lab) else None)
             for s, sub in sorted(subs.items())}
    hn = H.double().norm(dim=1).numpy()
    return dict(head=dict(V=int(V), d=int(d), tied=bool(W is model.get_input_embeddings().weight), singular_values=S,
                          row_norm_p50=float(W.detach().double().norm(dim=1).median())),
                subvocabs=vinfo,
                positions=dict(n=int(len(ys)), candidates=n_in, rows=min(n_rows, len(rows)), seed=seed, targets=ys.tolist(),
                               h_norm=hn.tolist(), h_norm_p50=float(np.median(hn))),
                alpha=alpha, steps=steps, cells=cells, timings=dict(positions_s=round(t1 - t0, 2), solve_s=round(t2 - t1, 2)))


# ---- the check on a tiny model (CPU) -------------------------------------------------------------------------------

def reference_cells(W, subs, ranks, ys, Rs, alpha, steps):
    "The design notebook's `real_head_predictions` with `lsnb.theory` (NumPy), on the same inputs: the reference of the check."
    import torch
    from lsnb import theory as T
    from lsnb.vocab import bottleneck_from_svd
    W = torch.as_tensor(W).double(); ys, Rs = np.asarray(ys), np.asarray(Rs, dtype=np.float64)
    s2 = torch.linalg.svdvals(W).square()
    out = []
    def one(axis, size, Wc, yc, extra):
        Wn = Wc.numpy()
        _, P = T.ball_optimum(Wn, yc, Rs, alpha=alpha, steps=steps)
        out.append(dict(axis=axis, size=size, achievable=np.atleast_1d(T.max_confidence_in_ball(Wn, yc, Rs, steps=steps)).tolist(),
                        pairwise_cap=np.atleast_1d(T.pairwise_norm_cap(Wn, yc, Rs)).tolist(),
                        ls_optimum=P[np.arange(len(yc)), yc].tolist(), row_norm_p50=float(Wc.norm(dim=1).median()), **extra))
    for size in sorted(subs):
        sub = subs[size]
        one('V', size, W[sub.ids], sub.lookup[torch.as_tensor(ys)].numpy(), {})
    for r in ranks:
        one('d', r, bottleneck_from_svd(W, r).weight().detach().double(), ys, dict(energy_kept=float(s2[:r].sum() / s2.sum())))
    return out


def check(steps=3000, seed=None, workers=2, device='cpu'):
    "The whole pipeline on a tiny random model (on `device`), every cell compared with `reference_cells` (lsnb.theory, CPU); returns the predictions."
    from lsnb.testing import tiny_tokenizer, tiny_causal_lm, alpaca_sample
    from lsnb.experiments import StudyConfig
    from lsnb.data import MCItem
    from lsnb.vocab import sft_target_counts
    from lsnb import theory as T
    rng = np.random.default_rng(seed)
    tok = tiny_tokenizer('chatml', chat=True)
    V, d = len(tok), 8
    model = tiny_causal_lm('llama', V, d, seed=int(rng.integers(1000)), tie_word_embeddings=True, pad_token_id=tok.pad_token_id).eval().to(device)
    cfg = StudyConfig(sft_limit=30, heldout=20, max_length=64, data_seed=int(rng.integers(1000)), methods=('option', 'letter'))
    items = {'english': {'t': [MCItem(f'q{i}', f'Which is it {i}?', [f'plants {i}', 'water', 'the sun'], i % 3) for i in range(3)]}}
    records = alpaca_sample(60)
    subs, counts, held, must, _ = choose_cells(cfg, tok, records, items, (100, 250, V), V, workers)
    c1, h1 = sft_target_counts(cfg, tok, records, V)          # the forked tokenisation counts what the library counts
    assert np.array_equal(counts, c1) and held == h1
    ranks = (2, 5, d)
    res = predictions(model, subs, held, ranks, alpha=0.1, n_positions=6, steps=steps, seed=int(rng.integers(1000)), counts=counts)
    ref = reference_cells(model.get_output_embeddings().weight.detach().cpu(), subs, ranks, res['positions']['targets'], res['positions']['h_norm'], 0.1, steps)
    ys, H, _ = measure_positions(model, held[:16], subs[min(subs)], 6, res['positions']['seed'])   # the same positions again
    assert ys.tolist() == res['positions']['targets']
    Wn, Hn = model.get_output_embeddings().weight.detach().double().cpu().numpy(), H.double().numpy()
    for want in ref:   # realised: softmax(W_c h)_y at the measured h, directly (W_r by NumPy's SVD)
        if want['axis'] == 'V': Z, y = Hn @ Wn[subs[want['size']].ids.numpy()].T, subs[want['size']].lookup[ys].numpy()
        else:
            U, S, Vt = np.linalg.svd(Wn, full_matrices=False); r = want['size']
            Z, y = Hn @ ((U[:, :r] * S[:r]) @ Vt[:r]).T, ys.numpy()
        want['realised'] = (1 / (1 + np.exp(-T.log_odds(Z, y)))).tolist()
    for got, want in zip(res['cells'], ref, strict=True):
        where = (got['axis'], got['size'])
        assert where == (want['axis'], want['size']), (where, want['axis'], want['size'])
        for k in ('achievable', 'pairwise_cap', 'ls_optimum', 'realised'):
            x, y = np.array(got[k]), np.array(want[k])
            assert np.allclose(x, y, rtol=1e-5, atol=1e-6), (where, k, x, y)
        assert math.isclose(got['row_norm_p50'], want['row_norm_p50'], rel_tol=1e-6), (where, got['row_norm_p50'], want['row_norm_p50'])
        if 'energy_kept' in want: assert math.isclose(got['energy_kept'], want['energy_kept'], rel_tol=1e-9), where
        assert all(q - 1e-6 <= a <= c + 1e-9 for a, q, c in zip(got['achievable'], got['ls_optimum'], got['pairwise_cap'])), where
    return res


# ---- the command -----------------------------------------------------------------------------------------------------

def head_vocab_size(kw)->int:
    "vocab_size of the model `lsnb.models.load_model(**kw)` loads, from its config alone (a GGUF file: its cached conversion)."
    from transformers import AutoConfig
    from lsnb.models import convert_gguf
    src = convert_gguf(kw['model'], kw['gguf_file'], kw['cache_dir']) if kw.get('gguf_file') else kw['model']
    c = AutoConfig.from_pretrained(src)
    return int((c.get_text_config() if hasattr(c, 'get_text_config') else c).vocab_size)


def _ints(s):
    try: v = [int(x) for x in s.split(',') if x]
    except ValueError: raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {s!r}') from None
    if not v or any(x < 1 for x in v) or len(set(v)) != len(v): raise argparse.ArgumentTypeError(f'expected distinct positive integers, got {s!r}')
    return sorted(v)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--check', action='store_true', help='self-check on a tiny random model, on --device (default: CUDA if available), against lsnb.theory; no other argument needed')
    p.add_argument('--config', type=Path, default=HERE/'gemma-3-270m-v2.json', help='the study config (studyfile.py) the design shares (default: %(default)s)')
    p.add_argument('--model-dir', type=Path, help="folder holding the config's GGUF file (load.gguf_file)")
    p.add_argument('--cache-dir', type=Path, help='where converted GGUF models are cached (default: lsnb.models.default_cache_dir())')
    p.add_argument('--items', type=Path, help='the evaluation items (lsnb.experiments.save_items), for must_include')
    p.add_argument('--data-root', help='instead of --items: the local data folder of the tasks')
    p.add_argument('--sft-records', type=Path, help="a local file of the SFT records (default: the study's sft_data)")
    p.add_argument('--subvocabs', type=Path, help='read V′ from this file (lsnb.vocab.save_subvocabs) instead of choosing it')
    p.add_argument('--subvocab-out', type=Path, help='also write the chosen V′ of every size to this .npz file (for the runs)')
    p.add_argument('--out', type=Path, help='the JSON file to write (required unless --check)')
    p.add_argument('--sizes', type=_ints, default=list(SIZES), help='|V′| of the V axis (default: %(default)s)')
    p.add_argument('--ranks', type=_ints, default=list(RANKS), help='r of the d axis (default: %(default)s)')
    p.add_argument('--infeasible', choices=('replace', 'error'), default='replace',
                   help="a size below the number of tokens evaluation needs: 'replace' it by that number (the design's rule; listed "
                        "under deviations) or stop with an error (default: %(default)s)")
    p.add_argument('--alpha', type=float, default=0.1, help='label smoothing of the LS optimum (default: %(default)s)')
    p.add_argument('--positions', type=int, default=32, help='target positions solved per cell (default: %(default)s)')
    p.add_argument('--rows', type=int, default=16, help='held-out packed rows the positions are drawn from (default: %(default)s)')
    p.add_argument('--steps', type=int, default=300, help='iterations of the ball solver, as in 02_theory (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='which positions (default: %(default)s)')
    p.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1), help='processes tokenising the SFT records (default: %(default)s)')
    p.add_argument('--device', help='device of the model and the solvers (default: CUDA if available)')
    a = p.parse_args(argv)
    if a.check: return a
    if a.out is None: p.error('--out is required (the JSON file to write)')
    if a.out.suffix != '.json': p.error(f'--out must be a .json file, got {a.out}')
    if not a.config.is_file(): p.error(f'--config: no such file {a.config}')
    if a.items and a.data_root: p.error('--items and --data-root: give one of them')
    for k in ('items', 'sft_records', 'subvocabs'):
        f = getattr(a, k)
        if f is not None and not f.is_file(): p.error(f'--{k.replace("_", "-")}: no such file {f}')
    if a.subvocabs is None and not (a.items or a.data_root): p.error('--items (or --data-root) is needed to choose V′ (or pass --subvocabs)')
    if a.subvocabs and a.subvocab_out: p.error('--subvocabs reads V′, --subvocab-out writes it: give one of them')
    if not 0 < a.alpha < 1: p.error(f'--alpha must be in (0, 1), got {a.alpha}')
    for k in ('positions', 'rows', 'steps', 'workers'):
        if getattr(a, k) < 1: p.error(f'--{k} must be >= 1, got {getattr(a, k)}')
    return a


def main(argv=None):
    T0 = time.time()
    args = parse_args(argv)
    if args.check:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        dev = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
        res = check(device=dev)
        print(f"vd_predictions --check: the {len(res['cells'])} cells of a tiny random model on {dev} agree with lsnb.theory "
              f"(solve {res['timings']['solve_s']} s)")
        return 0
    sys.path.insert(0, str(HERE))
    from studyfile import load_config, load_kwargs, model_source
    s = load_config(args.config)
    kw = load_kwargs(s, args.model_dir, args.cache_dir, args.device)   # the GGUF file is found and its hash checked
    _, gguf_sha = model_source(s, args.model_dir)
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    from lsnb.core import atomic_write_json, run_info
    from lsnb.models import load_model, load_tokenizer
    from lsnb.sft_data import read_records
    from lsnb.vocab import load_subvocabs, save_subvocabs
    subs = None
    if args.subvocabs:
        subs, _ = load_subvocabs(args.subvocabs)
        missing = [x for x in args.sizes if x not in subs]
        if missing: raise ValueError(f'--subvocabs {args.subvocabs} holds no V′ of sizes {missing} (it has {sorted(subs)})')
        subs = {x: subs[x] for x in args.sizes}
    items = None
    if subs is None:
        from dataclasses import replace
        from lsnb.experiments import read_study_items, study_items
        items = read_study_items(args.items) if args.items else study_items(replace(s.cfg, data_root=args.data_root, multilingual={}))
    records = read_records(args.sft_records if args.sft_records else s.cfg.sft_data)
    t0 = time.time()
    tok = load_tokenizer(kw['model'], kw.get('gguf_file'), cache_dir=kw['cache_dir'], check=kw['check'])
    V = head_vocab_size(kw)   # the model's V, from its config: V′ is checked and chosen before the weights are loaded
    t_tok = time.time() - t0
    deviations = []
    if subs is None: subs, counts, held, must, deviations = choose_cells(s.cfg, tok, records, items, args.sizes, V, args.workers, args.infeasible)
    else:
        bad = [k for k, x in subs.items() if x.V != V]
        if bad: raise ValueError(f'--subvocabs {args.subvocabs}: its V′ are sub-vocabularies of V={subs[bad[0]].V} tokens, the model has V={V}')
        counts, held = target_counts(s.cfg, tok, records, V, args.workers, counts=False); must = None
    t_data = time.time() - t0 - t_tok
    t0 = time.time()
    model, tok = load_model(**kw)
    t_load = time.time() - t0
    if int(model.get_output_embeddings().weight.shape[0]) != V:
        raise ValueError(f"the model's head has {model.get_output_embeddings().weight.shape[0]} rows, its config vocab_size={V}")
    if args.subvocab_out:
        save_subvocabs(args.subvocab_out, subs, study=s.name, config=args.config.name, must_include=None if must is None else int(len(must)),
                       counts='targets of every SFT record the study does not hold out (lsnb.vocab.sft_target_counts)')
    res = predictions(model, subs, held, args.ranks, args.alpha, args.positions, args.steps, args.seed, args.rows, counts)
    info = run_info(next(model.parameters()).device, config=args.config.name, config_sha256=s.sha256, gguf_sha256=gguf_sha,
                    model_source=s.load.get('gguf_file') or s.cfg.model)
    if os.environ.get('LSNB_COMMIT'): info['commit'] = os.environ['LSNB_COMMIT']   # a copy of the repository without .git
    res['timings'].update(tokenizer_s=round(t_tok, 2), data_s=round(t_data, 2), load_s=round(t_load, 2), total_s=round(time.time() - T0, 2))
    out = dict(status='real-head predictions of the controlled V/d design, computed before any run of it', study=s.name,
               must_include=None if must is None else int(len(must)), sizes_asked=args.sizes, deviations=deviations,
               subvocab_file=(args.subvocabs or args.subvocab_out).name if (args.subvocabs or args.subvocab_out) else None,
               **res, run_info=info)
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}: {len(res['cells'])} cells, {res['positions']['n']} positions; times {res['timings']}")
    return 0


if __name__ == '__main__':
    try: sys.exit(main())
    except (ValueError, FileNotFoundError) as e:
        print(f'vd_predictions.py: error: {e}', file=sys.stderr); sys.exit(2)

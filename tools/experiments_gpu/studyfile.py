"""The two file formats the study scripts share: the study config (JSON) and the prepared-data folder.

A config file is one JSON object:

    {"about": "free text, ignored",
     "study": {...},    # lsnb.experiments.StudyConfig fields (missing ones take the class defaults); recorded in study.json
     "runs":  [{...}],  # lsnb.experiments.RunSpec fields, one object per run, in the order to run them ("name" required)
     "load":  {...}}    # how the base model is loaded (LOAD_FIELDS); never recorded in study.json

Paths of the machine (data, GGUF folder, results) are never in a config: they are command-line arguments of
`prep.py` and `run_study.py`. A prepared folder (written by `prep.py`, read by `run_study.py`) holds
`items.jsonl.gz` (`lsnb.experiments.save_items`), `rows.npz` (the packed SFT rows, `write_rows`) and `prep.json`
(what they were made from: the study's data fields, the tokenizer's fingerprint, the source files' hashes).
"""
from __future__ import annotations
import json, hashlib, dataclasses, typing, types
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from lsnb.core import config_to_dict, config_diff, atomic_write_json
from lsnb.experiments import StudyConfig, RunSpec

TOP_KEYS = ('about', 'study', 'runs', 'load')
LOAD_FIELDS = {  # field: (type, help)
    'gguf_file': (str, 'GGUF file name, found in --model-dir (None: load `study.model`, a Hub id or folder)'),
    'gguf_sha256': (str, 'the GGUF file must have this SHA-256 (checked before loading)'),
    'dtype': (str, "weights' dtype for lsnb.models.load_model ('float32', 'bfloat16'; None: its default)"),
    'check_tokenizer': (bool, 'run the tokenizer guard of lsnb.models.load_model (default true)'),
}
# the StudyConfig fields the prepared items and rows depend on (the training recipe and the evaluation batch size do not)
ITEM_FIELDS = ('english', 'multilingual')
ROW_FIELDS = ('sft_data', 'sft_limit', 'heldout', 'data_seed', 'max_length', 'template')


class ConfigError(ValueError):
    "A config file that cannot describe a study: the message names the file, the entry and what is wrong."


@dataclass
class Study:
    "One config file, checked: the study, its runs, how to load its model, and where it came from."
    cfg: StudyConfig
    runs: list
    load: dict
    path: Path
    sha256: str

    @property
    def name(self): return self.cfg.name


def _type_name(tp):
    return getattr(tp, '__name__', str(tp))


def _check_value(v, tp, where):
    "`v` as a value of annotation `tp` (JSON lists become tuples for tuple fields; ints become floats for float fields)."
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        if v is None and type(None) in args: return None
        tp = next(a for a in args if a is not type(None))
    if tp is bool:
        if not isinstance(v, bool): raise ConfigError(f'{where} must be true or false, got {v!r}')
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int): raise ConfigError(f'{where} must be an integer, got {v!r}')
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)): raise ConfigError(f'{where} must be a number, got {v!r}')
        return float(v)
    if tp is str:
        if not isinstance(v, str): raise ConfigError(f'{where} must be a string, got {v!r}')
        return v
    if tp is dict:
        if not isinstance(v, dict): raise ConfigError(f'{where} must be an object, got {v!r}')
        return dict(v)
    if tp is tuple:
        if not isinstance(v, list): raise ConfigError(f'{where} must be a list, got {v!r}')
        return tuple(v)
    raise ConfigError(f'{where}: cannot check a value of type {_type_name(tp)}')


def _dataclass_from(cls, d, where):
    "An instance of dataclass `cls` from the JSON object `d`; unknown, missing or mistyped fields raise `ConfigError`."
    if not isinstance(d, dict): raise ConfigError(f'{where} must be an object of {cls.__name__} fields, got {type(d).__name__}')
    hints, names = typing.get_type_hints(cls), [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in d if k not in names]
    if unknown: raise ConfigError(f'{where}: unknown field(s) {", ".join(map(repr, unknown))} (a {cls.__name__} has: {", ".join(names)})')
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in d
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing: raise ConfigError(f'{where}: missing field(s) {", ".join(map(repr, missing))}')
    return cls(**{k: _check_value(v, hints[k], f'{where}.{k}') for k, v in d.items()})


def _check_tasks(cfg, where):
    "Every task of the study is a task lsnb knows (or a .jsonl file of items), with an integer or null limit."
    from lsnb.data import get_task
    for part in ITEM_FIELDS:
        for t, n in getattr(cfg, part).items():
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                raise ConfigError(f'{where}: study.{part}.{t} must be a positive integer or null, got {n!r}')
            if str(t).endswith('.jsonl'): continue
            try: get_task(t)
            except (KeyError, ValueError) as e: raise ConfigError(f'{where}: study.{part}: {e}') from None


def load_config(path) -> Study:
    "Read and check one config file; every problem raises `ConfigError` naming the file and the entry."
    path = Path(path)
    if not path.is_file(): raise ConfigError(f'config file not found: {path}')
    raw = path.read_bytes()
    try: d = json.loads(raw)
    except json.JSONDecodeError as e: raise ConfigError(f'{path}: not valid JSON ({e})') from None
    where = path.name
    if not isinstance(d, dict): raise ConfigError(f'{where}: the config must be a JSON object with keys {TOP_KEYS}')
    unknown = [k for k in d if k not in TOP_KEYS]
    if unknown: raise ConfigError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))} (allowed: {", ".join(TOP_KEYS)})')
    for k in ('study', 'runs'):
        if k not in d: raise ConfigError(f'{where}: missing key {k!r}')
    cfg = _dataclass_from(StudyConfig, d['study'], f'{where}: study')
    if not cfg.name or '/' in cfg.name or cfg.name.startswith('.'):
        raise ConfigError(f'{where}: study.name must be a plain folder name, got {cfg.name!r}')
    _check_tasks(cfg, where)
    if not cfg.methods: raise ConfigError(f'{where}: study.methods must name at least one scoring method')
    if cfg.multilingual_methods is not None:
        from lsnb.experiments import multilingual_methods
        try: multilingual_methods(cfg)
        except ValueError as e: raise ConfigError(f'{where}: study.multilingual_methods: {e}') from None
    if not isinstance(d['runs'], list) or not d['runs']: raise ConfigError(f'{where}: runs must be a non-empty list of RunSpec objects')
    runs = [_dataclass_from(RunSpec, r, f'{where}: runs[{i}]') for i, r in enumerate(d['runs'])]
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup: raise ConfigError(f'{where}: duplicate run name(s) {", ".join(dup)}')
    load = d.get('load', {})
    if not isinstance(load, dict): raise ConfigError(f'{where}: load must be an object, got {type(load).__name__}')
    bad = [k for k in load if k not in LOAD_FIELDS]
    if bad: raise ConfigError(f'{where}: load: unknown field(s) {", ".join(map(repr, bad))} (allowed: {", ".join(LOAD_FIELDS)})')
    load = {k: _check_value(v, LOAD_FIELDS[k][0] | None, f'{where}: load.{k}') for k, v in load.items()}
    if load.get('gguf_sha256') and not load.get('gguf_file'): raise ConfigError(f'{where}: load.gguf_sha256 needs load.gguf_file')
    if load.get('gguf_file') and Path(load['gguf_file']).is_absolute():
        raise ConfigError(f'{where}: load.gguf_file must be a file name (found in --model-dir), not an absolute path: {load["gguf_file"]!r}')
    return Study(cfg, runs, load, path, hashlib.sha256(raw).hexdigest())


def select_runs(study:Study, names): # names: run names, or None for all
    "The study's runs named in `names` (in the config's order); an unknown name raises `ConfigError`."
    if not names: return list(study.runs)
    known = [r.name for r in study.runs]
    bad = [n for n in names if n not in known]
    if bad: raise ConfigError(f'{study.path.name}: no run(s) {", ".join(bad)}; the config has: {", ".join(known)}')
    return [r for r in study.runs if r.name in names]


def with_config_defaults(c:dict) -> dict:
    "A saved study config (a StudyConfig as JSON) with the fields added to StudyConfig since it was saved, at their defaults (which is what the study used)."
    return {**json.loads(json.dumps(dataclasses.asdict(StudyConfig()))), **c}


def with_run_defaults(r:dict) -> dict:
    "A saved run (a RunSpec as JSON) with the fields added to RunSpec since it was saved, at their defaults (which is what the run used)."
    return {**json.loads(json.dumps(dataclasses.asdict(RunSpec(r['name'])))), **r}


def saved_study_diff(study:Study, out) -> list:
    "Why `run_study` would refuse the results folder `out` (its study.json has another config or other runs); [] if it would not."
    f = Path(out)/'study.json'
    if not f.exists(): return []
    old = json.loads(f.read_text())
    probs = [f'study.{k}: saved {a!r}, config {b!r}' for k, (a, b) in config_diff(with_config_defaults(old['config']), study.cfg).items()]
    known = {r['name']: with_run_defaults(r) for r in old['runs']}
    for r in study.runs:
        if r.name in known and config_diff(known[r.name], r): probs.append(f'run {r.name!r} differs from the saved run of that name')
    return probs


# ---- the prepared folder ------------------------------------------------------------------------------------------

def tokenizer_fingerprint(tok) -> str:
    "SHA-256 of what the packed rows depend on: the vocabulary, the special tokens, the chat template, a probe's ids."
    from lsnb.models import PROBES
    d = dict(vocab=sorted(tok.get_vocab().items(), key=lambda kv: kv[1]), special=sorted(tok.all_special_tokens),
             bos=tok.bos_token_id, eos=tok.eos_token_id, chat_template=tok.chat_template,
             probes=[tok(p)['input_ids'] for p in PROBES])
    return hashlib.sha256(json.dumps(d, ensure_ascii=False).encode()).hexdigest()


def write_rows(path, train:list, held:list):
    "Packed SFT rows (`input_ids`, `labels`, `position_ids`) of the training and held-out sets in one .npz file."
    def pack(rows):
        L = max((len(r['input_ids']) for r in rows), default=0)
        ids = np.zeros((len(rows), L), np.int32); lab = np.full((len(rows), L), -100, np.int32)
        pos = np.zeros((len(rows), L), np.int32); n = np.zeros(len(rows), np.int32)
        for i, r in enumerate(rows):
            k = len(r['input_ids']); n[i] = k
            ids[i, :k], lab[i, :k], pos[i, :k] = r['input_ids'], r['labels'], r['position_ids']
        return dict(ids=ids, lab=lab, pos=pos, n=n)
    path = Path(path); tmp = path.with_name(path.name + '.tmp.npz')
    np.savez_compressed(tmp, **{f'{part}_{k}': v for part, rows in (('train', train), ('held', held)) for k, v in pack(rows).items()})
    tmp.replace(path)


def read_rows(path):
    "(training rows, held-out rows) from `write_rows`."
    with np.load(path) as f:
        def rows(part):
            ids, lab, pos, n = (f[f'{part}_{k}'] for k in ('ids', 'lab', 'pos', 'n'))
            return [dict(input_ids=ids[i, :n[i]].tolist(), labels=lab[i, :n[i]].tolist(), position_ids=pos[i, :n[i]].tolist())
                    for i in range(len(n))]
        return rows('train'), rows('held')


def prep_record(study:Study, tok, **extra) -> dict:
    "What `prep.json` records about a prepared folder of `study`."
    c = config_to_dict(study.cfg)
    return dict(study=study.name, data={k: c[k] for k in ITEM_FIELDS + ROW_FIELDS},
                tokenizer_sha256=tokenizer_fingerprint(tok), **extra)


def write_prep_record(folder, record:dict): atomic_write_json(Path(folder)/'prep.json', record)


def check_prepared(folder, study:Study, tok=None) -> dict:
    "The `prep.json` of `folder` if it was made for `study` (and for `tok`, if given); else a `ConfigError` saying why."
    folder = Path(folder)
    for f in ('prep.json', 'items.jsonl.gz', 'rows.npz'):
        if not (folder/f).is_file(): raise ConfigError(f'prepared folder {folder} has no {f}: run prep.py for {study.name} first')
    rec = json.loads((folder/'prep.json').read_text())
    diff = config_diff(rec.get('data', {}), {k: v for k, v in config_to_dict(study.cfg).items() if k in ITEM_FIELDS + ROW_FIELDS})
    if diff: raise ConfigError(f'{folder} was prepared for other data than {study.path.name}: '
                               + '; '.join(f'study.{k}: prepared {a!r}, config {b!r}' for k, (a, b) in diff.items()))
    if tok is not None and rec.get('tokenizer_sha256') != tokenizer_fingerprint(tok):
        raise ConfigError(f'{folder} was tokenised with another tokenizer than the one loaded for {study.name} '
                          '(a different model, or a transformers version that converts the GGUF tokenizer differently)')
    return rec


# ---- the base model -----------------------------------------------------------------------------------------------

def model_source(study:Study, model_dir=None):
    "(`lsnb.models.load_model` arguments `model`/`gguf_file`, the GGUF's SHA-256 or None) of `study` on this machine."
    g = study.load.get('gguf_file')
    if not g: return dict(model=study.cfg.model, gguf_file=study.cfg.gguf_file), None
    from lsnb.models import resolve_gguf, file_sha256
    try: path = resolve_gguf(model_dir, g)
    except FileNotFoundError as e:
        raise ConfigError(f'{study.path.name}: {e}; pass --model-dir, the folder that holds {g}') from None
    sha, want = file_sha256(path), study.load.get('gguf_sha256')
    if want and sha != want: raise ConfigError(f'{path.name} has SHA-256 {sha}, but {study.path.name} asks for {want}: not the same file')
    return dict(model=str(path.parent), gguf_file=path.name), sha


def load_kwargs(study:Study, model_dir=None, cache_dir=None, device=None) -> dict:
    "Keyword arguments of `lsnb.models.load_model` for the study's base model (the GGUF file is found and its hash checked)."
    src, _ = model_source(study, model_dir)
    return dict(**src, dtype=study.load.get('dtype'), device=device, cache_dir=cache_dir,
                check=study.load.get('check_tokenizer', True) is not False)

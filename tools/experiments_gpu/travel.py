#!/usr/bin/env python
"""Make the working tree small enough to travel with a device call (64 MiB: tracked and untracked-not-ignored files), and put it back.

    python tools/experiments_gpu/travel.py size                               # what a call would carry now
    python tools/experiments_gpu/travel.py slim HOLD --keep gemma-3-270m-vd   # for a study call
    python tools/experiments_gpu/travel.py slim HOLD --bare                   # for a carry call (nothing of the tree is needed)
    python tools/experiments_gpu/travel.py restore HOLD
    python HOLD/tools/experiments_gpu/travel.py restore HOLD                 # after --bare (this script is in HOLD then)

`slim` moves `nbs/` and `tests/` (with `--bare` also `lsnb/` and `tools/`) into the folder HOLD (outside the
repository; created, and refused if it holds anything), then, for each `--keep STUDY`, recreates
`nbs/experiments/results/STUDY/` with its `study.json` and every run's `run.json` alone: what `run_study.py` and
`carried_study.sh` need to skip the runs already made (a run is done when its `run.json` exists), without their score
files. It records what it moved and made in `HOLD/travel.json` and prints the size that would travel. `restore`
deletes exactly the files `slim` made, moves the folders back and checks with `git status` that no tracked file is
missing or changed; it finds the repository in `HOLD/travel.json`, so after `--bare` it runs from HOLD's copy of
this script. Every check runs before anything is moved. Exit status 0, or 2 with a line saying what is wrong.
"""
import argparse, json, shutil, subprocess, sys
from pathlib import Path

LIMIT = 64 * 2 ** 20
MOVED = ('nbs', 'tests')
BARE = ('lsnb', 'tools')


class TravelError(Exception): pass


def _git(root, *args):
    r = subprocess.run(['git', '-C', str(root), *args], capture_output=True, text=True)
    if r.returncode: raise TravelError(f'git {" ".join(args)} failed in {root}: {r.stderr.strip()}')
    return r.stdout


def travel_size(root:Path):
    "Bytes that a device call would carry: the tracked and untracked-not-ignored files that exist (symlinks as links)."
    names = _git(root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard').split('\0')
    return sum((root/n).lstat().st_size for n in set(names) if n and ((root/n).is_symlink() or (root/n).is_file()))


def slim(root:Path, hold:Path, keep=(), bare=False):
    "Move the heavy folders into `hold` and recreate the kept studies' run.json skeletons; the record written to hold/travel.json."
    root, hold = root.resolve(), hold.resolve()
    if hold == root or root in hold.parents: raise TravelError(f'HOLD {hold} is inside the repository: it would travel too')
    if hold.exists() and (not hold.is_dir() or any(hold.iterdir())): raise TravelError(f'HOLD {hold} exists and is not an empty folder')
    moved = [m for m in MOVED + (BARE if bare else ()) if (root/m).exists()]
    if not moved: raise TravelError(f'nothing to move: none of {", ".join(MOVED + (BARE if bare else ()))} is in {root}')
    if bare and keep: raise TravelError('--bare leaves no tree to keep a study in: give --keep or --bare, not both')
    made = []
    for s in keep:
        src = root/'nbs'/'experiments'/'results'/s
        if not (src/'study.json').is_file(): raise TravelError(f'--keep {s}: no {src.relative_to(root)}/study.json (a study with no runs yet has nothing to keep: leave it out)')
        made += [src/'study.json'] + sorted(src.glob('runs/*/run.json'))
    hold.mkdir(parents=True, exist_ok=True)
    for m in moved: shutil.move(str(root/m), str(hold/m))
    rel = []
    for f in made:
        r = f.relative_to(root); dest = root/r
        dest.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(hold/r, dest); rel.append(str(r))
    rec = dict(root=str(root), moved=moved, made=rel, keep=list(keep), bare=bare)
    (hold/'travel.json').write_text(json.dumps(rec, indent=1) + '\n')
    return rec


def restore(root:Path, hold:Path):
    "Undo `slim`: delete the files it made, move the folders back, check that git sees every tracked file as it was."
    root, hold = root.resolve(), hold.resolve()
    f = hold/'travel.json'
    if not f.is_file(): raise TravelError(f'HOLD {hold} has no travel.json: it was not made by `travel.py slim`')
    rec = json.loads(f.read_text())
    if Path(rec['root']) != root: raise TravelError(f'HOLD {hold} was made for the repository {rec["root"]}, not {root}')
    missing = [m for m in rec['moved'] if not (hold/m).exists()]
    if missing: raise TravelError(f'HOLD {hold} lacks {", ".join(missing)}: nothing was restored')
    for r in rec['made']:
        if (root/r).is_file(): (root/r).unlink()
    for m in rec['moved']:
        if (root/m).exists():   # only the empty folders the skeleton files left
            for d in sorted((p for p in (root/m).rglob('*') if p.is_dir()), key=lambda p: -len(p.parts)): d.rmdir()
            (root/m).rmdir()
        shutil.move(str(hold/m), str(root/m))
    f.unlink(); hold.rmdir()
    bad = [l for l in _git(root, 'status', '--porcelain').splitlines() if l[:2].strip() and l[:2] != '??']
    if bad: raise TravelError('after restore git reports changed or missing tracked files: ' + '; '.join(bad[:5]))
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(prog='travel.py', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--root', type=Path, help="the repository (default: this script's; for restore, the one HOLD/travel.json names)")
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('size', help='print what a device call would carry now')
    s = sub.add_parser('slim', help='move the heavy folders into HOLD')
    s.add_argument('hold', type=Path, help='a new or empty folder outside the repository')
    s.add_argument('--keep', action='append', default=[], metavar='STUDY', help="keep this study's study.json and run.json files (repeatable)")
    s.add_argument('--bare', action='store_true', help='also move lsnb/ and tools/ (a call that needs nothing of the tree)')
    r = sub.add_parser('restore', help='put back what `slim` moved into HOLD')
    r.add_argument('hold', type=Path)
    a = p.parse_args(argv)
    try:
        if a.root is None:
            rec = a.hold/'travel.json' if a.cmd == 'restore' else None
            a.root = Path(json.loads(rec.read_text())['root']) if rec is not None and rec.is_file() else Path(__file__).resolve().parents[2]
        if a.cmd == 'slim': rec = slim(a.root, a.hold, a.keep, a.bare); print(f"moved {', '.join(rec['moved'])} into {a.hold}; kept {len(rec['made'])} files")
        elif a.cmd == 'restore': rec = restore(a.root, a.hold); print(f"restored {', '.join(rec['moved'])}; git status clean")
        if a.cmd == 'slim' and a.bare: print(f'to restore: python {a.hold}/tools/experiments_gpu/travel.py restore {a.hold}')
        n = travel_size(a.root)
        print(f'travels: {n / 2 ** 20:.1f} MiB of {LIMIT / 2 ** 20:.0f} MiB' + ('' if n <= LIMIT else ' -- OVER the limit'))
    except TravelError as e:
        print(f'travel.py: {e}', file=sys.stderr); return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

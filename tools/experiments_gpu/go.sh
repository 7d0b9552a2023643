# device side of nbs/experiments: usage `bash .whl_xpN/go.sh PART [BUDGET_S]`; copies the carried part to /tmp/xp,
# and with a budget runs the study driver ($SCRIPT, default go.py) on what has arrived; wheels carried in two halves
# (NAME.whl.a, NAME.whl.b) are joined first.
set -o pipefail
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p /tmp/xp; P=$1; B=$2
[ -d "$P" ] && cp -n $P/* /tmp/xp/ 2>/dev/null; ls /tmp/xp
if [ -z "$B" ]; then exit 0; fi
if [ ! -d /tmp/site/transformers ]; then
  [ -f /tmp/xp/go.py ] || { echo "MISSING /tmp/xp (fresh machine?)"; exit 3; }
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/xp/transformers-5.23.0-py3-none-any.whl /tmp/xp/gguf-0.19.0-py3-none-any.whl || exit 4
fi
for w in /tmp/xp/*.whl.a; do [ -f "${w%.a}" ] || cat "$w" "${w%.a}.b" > "${w%.a}"; done
timeout $((B + 60)) python3 /tmp/xp/${SCRIPT:-go.py} $B 2>&1 | grep --line-buffered -v "eos_token_id must\|it/s]" | tee $OUT/log.txt
ls -la $OUT

# Sourced by .ci/run and deploy/demo.sh: make .venv from a Python >= 3.12 and install petzarr.
#   usage: . deploy/python.sh EXTRAS      (EXTRAS e.g. "" or "[test]")
find_python() {
  local cand v p
  for cand in python3.12 python3.13 python3.14 python3; do
    if command -v "$cand" >/dev/null 2>&1 &&
      "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; then
      command -v "$cand"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then  # pyenv installs that are not the global version
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.1[2-9](\.|$)' | sort -V); do
      p=$(PYENV_VERSION=$v pyenv which python3 2>/dev/null) && [ -x "$p" ] && { echo "$p"; return 0; }
    done
  fi
  return 1
}

PY=$(find_python) || { echo "no Python >= 3.12 found (python3.12 on PATH, or via pyenv)" >&2; exit 1; }
VENV=${PETZARR_VENV:-.venv}
echo "petzarr: using $PY ($("$PY" --version 2>&1)), venv $VENV"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".${1:-}"

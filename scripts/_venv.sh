# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo (not run directly): makes sure .venv exists with
# this project installed in editable mode with its dev extras, and beside it the vendor
# simulator (simulator/: its own distribution, which a production install of the tap does not
# carry; installed second, as an older tap-callcdr in .venv owned its console script), then
# puts .venv/bin on PATH. Reinstalls only when a pyproject.toml changes, so reruns
# are fast and quiet.
#   PYTHON=python3.12 scripts/test   # choose the interpreter used to create .venv
#   CALLCDR_VENV=/path               # use another venv directory

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CALLCDR_VENV:-$ROOT/.venv}"

_callcdr_pick_python() {
  local py
  for py in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 14)))'; then
      echo "$py"
      return 0
    fi
  done
  echo "error: Python 3.11-3.13 not found (python3.11 preferred); set PYTHON=..." >&2
  return 1
}

ensure_venv() {
  local py want stamp
  if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    py="$(_callcdr_pick_python)" || return 1
    echo "==> creating $VENV with $("$py" --version 2>&1)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || return 1
  fi
  stamp="$VENV/.callcdr-installed"
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/simulator/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing tap-callcdr[dev] and callcdr-simulator into $VENV (first run takes a few minutes)"
    rm -f "$stamp"
    local log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip \
           && "$VENV/bin/python" -m pip install -e "$ROOT[dev]" \
           && "$VENV/bin/python" -m pip install -e "$ROOT/simulator[https]"; } >"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "error: pip install failed; full log: $log" >&2
      return 1
    fi
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
  export VIRTUAL_ENV="$VENV"
}

# meltano install PLUGIN... with output to LOG (shown on failure). tap-callcdr's pip_url is
# "-e .", and meltano only reinstalls when a pip_url changes, so a changed pyproject.toml
# (new dependency, new entry point) would go unnoticed: drop that plugin venv then.
meltano_install() {
  local log="$1"; shift
  local tapvenv="$ROOT/.meltano/extractors/tap-callcdr/venv" want
  want="$(sha256sum <"$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ -d "$tapvenv" ] && [ "$(cat "$tapvenv/.callcdr-pyproject" 2>/dev/null)" != "$want" ]; then
    rm -rf "$tapvenv"
  fi
  if ! (cd "$ROOT" && meltano install "$@") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "error: meltano install $* failed; full log: $log" >&2
    return 1
  fi
  if [ -d "$tapvenv" ]; then echo "$want" >"$tapvenv/.callcdr-pyproject"; fi
}

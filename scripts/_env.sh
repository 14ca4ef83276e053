# Sourced by the scripts: a Python 3.11+ virtualenv in .venv with the project installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ensure_venv() {  # ensure_venv EXTRAS  (e.g. "dev" or "dev,bench"; "" for none)
  local py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Curvecast needs Python 3.11 or newer as \$PYTHON or python3" >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  local spec="."
  [ -n "${1:-}" ] && spec=".[$1]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ./client -e "$spec"
}

# Sourced by the quick-start scripts: a project virtualenv with syndicate installed.
# Usage: . scripts/venv.sh [EXTRAS]   e.g. ". scripts/venv.sh dev"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "syndicate needs Python 3.11 or newer ($PYTHON is $("$PYTHON" -V 2>&1))" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv \
    || { echo "could not create .venv; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable ".${1:+[$1]}"
export PATH="$PWD/.venv/bin:$PATH"

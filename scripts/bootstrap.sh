# Sourced by the other scripts: make sure uv exists and, unless the caller set
# BOOTSTRAP_UV_ONLY=1 (the quick start, which needs no dev tools), the project's
# virtualenv. Everything is installed from PyPI; nothing needs to be on the machine
# beforehand except Python 3.11+ with pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --user "uv==0.13.*" 2>/dev/null || python3 -m pip install --quiet "uv==0.13.*"
  # Wherever pip put the executable (user or interpreter scripts directory).
  PATH="$HOME/.local/bin:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  export PATH
fi
if ! command -v uv >/dev/null 2>&1; then
  uv() { python3 -m uv "$@"; }  # the uv package also runs as a module
fi
export UV_PYTHON="${UV_PYTHON:-3.11}"
if [ "${BOOTSTRAP_UV_ONLY:-0}" != 1 ]; then
  # Bytecode is compiled here, once (with PYTHONDONTWRITEBYTECODE set, as on our CI
  # machines, every start would otherwise recompile ~330 modules: 0.45 s measured).
  # As a flag, not UV_COMPILE_BYTECODE in the environment: that made every later
  # `uv run` compile again and print "Bytecode compiled 1882 files".
  uv sync --locked --quiet --compile-bytecode
  # The tap's own package is installed editable, so uv leaves it out: 30 ms of every start.
  uv run --no-sync python -m compileall -q tap_maesn_qonto
fi

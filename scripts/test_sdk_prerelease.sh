#!/usr/bin/env bash
# The tap against the newest singer-sdk pre-release (0.55 betas as of 2026-12): a venv of
# its own (.venv-sdk-pre), the tap installed without its pin (~=0.54.9 for users), then
# the given pytest arguments (default: the default tier). Breaks here warn before the
# pin moves: TapCapabilities.ACTIVATE_VERSION went away, emit_activate_version_messages
# became a built-in setting, Stream.logger a LoggerAdapter.
BOOTSTRAP_UV_ONLY=1 source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
venv=.venv-sdk-pre
uv venv --quiet --allow-existing --python "$UV_PYTHON" "$venv"
export VIRTUAL_ENV="$PWD/$venv"
uv pip install --quiet --no-deps -e .
uv pip install --quiet --prerelease=allow "singer-sdk[msgspec,testing,faker]>0.54.9" \
  "requests~=2.34" "pytest>=9" "pytest-xdist>=3.8" "hypothesis>=6.150" "pyyaml>=6" \
  "check-jsonschema>=0.39"
"$venv/bin/python" -c 'from importlib.metadata import version; print("singer-sdk", version("singer-sdk"))'
if [ "$#" -eq 0 ]; then set -- -n 2 -m "not e2e"; fi
"$venv/bin/python" -m pytest "$@"

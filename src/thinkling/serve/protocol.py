"""Request bodies and errors of the OpenAI API, as far as ``thinkling serve`` implements it.

Bodies accept fields they do not use (clients send ``user``, ``metadata``, ...), as OpenAI's own API
does; what is used is validated, and a bad value is a 400 naming the field. Extensions (send them
with the openai client's ``extra_body``): ``thinking_budget``, ``separate_reasoning``, ``top_k``,
``ignore_eos``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ApiError(Exception):
    """An error answered as OpenAI does: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class StreamOptions(_Body):
    include_usage: bool = False


class _Request(_Body):
    model: str
    n: int = Field(1, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, description="default 1.0 (as OpenAI); 0 is greedy")
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # extensions
    top_k: int | None = Field(None, ge=0, description="sample from the k most likely tokens only (0: off)")
    thinking_budget: int | None = Field(None, ge=0, description="most tokens inside <think>...</think>; "
                                        "then </think> is inserted and the answer follows")
    ignore_eos: bool = Field(False, description="keep generating after the end-of-turn token")

    def stops(self) -> list[str]:
        s = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if any(not x for x in s):
            raise ApiError(400, "stop strings must not be empty", param="stop")
        if len(s) > 16:
            raise ApiError(400, f"at most 16 stop strings are supported, got {len(s)}", param="stop")
        return s


class TextPart(_Body):
    type: Literal["text"]
    text: str


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def as_dict(self) -> dict[str, str]:
        c = self.content
        text = "" if c is None else c if isinstance(c, str) else "".join(p.text for p in c)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatRequest(_Request):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0)
    separate_reasoning: bool | None = Field(None, description="return <think> as message.reasoning_content "
                                            "(default: the server's --reasoning-parser)")
    continue_final_message: bool = Field(False, description="the last message is a started assistant reply: "
                                         "continue it (vLLM's extension; the reply holds the continuation only)")
    add_generation_prompt: bool = Field(True, description="vLLM's extension; false goes with continue_final_message")


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = Field(16, ge=1, description="default 16, as OpenAI's legacy completions")
    logprobs: int | None = Field(None, ge=0)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1)

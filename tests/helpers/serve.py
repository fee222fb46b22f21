"""Talking to ``thinkling serve``: the questions asked, the official ``openai`` client, raw POSTs (for
malformed bodies) and the server's ``/stats``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai

QUESTIONS = [f"a={i % 10}, b=a+{(3 * i) % 7}, c=b-{i % 4}. What is c?" for i in range(20)]


def msgs(q: str) -> list[dict]:
    return [{"role": "user", "content": q}]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=60)


def post(url: str, path: str, body: bytes | dict) -> tuple[int, dict]:
    """A raw POST (the openai client cannot send malformed bodies); returns (status, JSON body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as r:
        return json.loads(r.read())

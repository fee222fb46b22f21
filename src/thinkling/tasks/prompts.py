"""Prompt formats shared by training and evaluation (a student is asked at eval as it was taught).

LoRID: three adapters on one base - the Intuitive Reasoner (question -> reasoning + answer), the
Knowledge Generator (question -> the knowledge a solution uses) and the Deep Reasoner (the question
with that knowledge before it -> reasoning + answer).
"""

from __future__ import annotations

LORID_ADAPTERS = ("intuitive", "knowledge", "deep")
KNOWLEDGE_OPEN = "Knowledge:"


def deep_question(question: str, knowledge: str) -> str:
    """The Deep Reasoner's prompt: the question with the knowledge before it."""
    return f"{KNOWLEDGE_OPEN} {knowledge}\n\n{question}"

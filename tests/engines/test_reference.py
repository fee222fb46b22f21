"""The ``reference`` engine: a dataset's own solutions as the teacher's traces."""

from __future__ import annotations

from helpers.engines import ask
from thinkling.engines import build_engine, engine_options
from thinkling.tasks import get_task


def test_reference_engine_writes_the_datasets_solutions(gsm8k_dir):
    task = get_task("gsm8k", data_dir=str(gsm8k_dir))
    p = task.problems("train", n=1)[0]
    eng = build_engine(engine_options({"backend": "reference"}))
    rep, err = eng.generate([ask(p.question, 2048, problem=p, task=task),
                             ask(p.question, 8, problem=p, task=task, role="judge")])
    tr = task.reference_trace(p)
    assert (rep.reasoning, rep.answer) == (tr.reasoning, tr.answer)
    assert task.score(rep.text, p.answer)[1]
    assert isinstance(err, ValueError) and "cannot judge" in str(err)

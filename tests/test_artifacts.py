"""Stage artifacts: crash-safe append logs, JSONL errors naming file:line:field, manifests, atomic writes."""

from __future__ import annotations

import json
import os

import pytest

from thinkling.artifacts import (
    MANIFEST, AppendLog, DataError, atomic_write_json, atomic_write_text, fingerprint, invalidate, is_complete,
    iter_jsonl, read_jsonl, read_manifest, stable_hash, write_jsonl, write_manifest,
)
from thinkling.records import Example


def example(i: int, **kw) -> dict:
    d = {"id": f"e{i}", "problem_id": f"p{i}", "task": "arithmetic", "level": 1, "question": f"q{i}",
         "reasoning": "r", "answer": "7"}
    d.update(kw)
    return d


# ----------------------------------------------------------------------------- AppendLog


def test_append_log_cuts_a_partial_last_line_and_appends_after_it(tmp_path):
    p = tmp_path / "traces.jsonl"
    good = [json.dumps({"key": "a"}), json.dumps({"key": "b"})]
    partial = '{"key": "c", "reaso'  # what kill -9 leaves mid-write
    p.write_text("\n".join(good) + "\n" + partial)
    with AppendLog(p) as log:
        assert log.repaired_bytes == len(partial)
        log.append([{"key": "d"}, {"key": "e"}])
    lines = p.read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["a", "b", "d", "e"]
    assert p.read_bytes().endswith(b"\n")


def test_append_log_with_only_a_partial_line_starts_empty(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"key": "a", "x')
    with AppendLog(p) as log:
        assert log.repaired_bytes == len('{"key": "a", "x')
        log.append([{"key": "b"}])
    assert read_jsonl(p) == [{"key": "b"}]


def test_append_log_leaves_a_complete_file_alone(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"key": "a"}\n')
    with AppendLog(p) as log:
        assert log.repaired_bytes == 0
    assert p.read_text() == '{"key": "a"}\n'


def test_append_log_accepts_pydantic_records_and_creates_parents(tmp_path):
    p = tmp_path / "deep" / "dir" / "t.jsonl"
    with AppendLog(p) as log:
        log.append([Example(**example(1)), Example(**example(2))])
        log.append([])
    rows = read_jsonl(p, Example)
    assert [r.id for r in rows] == ["e1", "e2"]


def test_append_log_data_is_on_disk_after_each_append(tmp_path):
    p = tmp_path / "t.jsonl"
    log = AppendLog(p)
    log.append([{"key": "a"}])
    # readable by another reader before close (flushed), as a killed process would leave it
    assert read_jsonl(p) == [{"key": "a"}]
    log.close()


# ----------------------------------------------------------------------------- iter_jsonl


def test_malformed_json_error_names_file_and_line(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text(json.dumps(example(1)) + "\n\n" + json.dumps(example(2)) + "\n{not json\n")
    with pytest.raises(DataError) as e:
        read_jsonl(p, Example)
    assert f"{p}:4:" in str(e.value)  # blank line 2 still counts as a line
    assert "malformed JSON" in str(e.value)


def test_missing_field_error_names_file_line_and_field(tmp_path):
    p = tmp_path / "data.jsonl"
    bad = example(2)
    del bad["reasoning"]
    p.write_text(json.dumps(example(1)) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as e:
        read_jsonl(p, Example)
    msg = str(e.value)
    assert f"{p}:2:" in msg and "field 'reasoning'" in msg


def test_wrong_type_and_extra_field_errors_name_the_field(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text(json.dumps(example(1, level="hard")) + "\n")
    with pytest.raises(DataError) as e:
        read_jsonl(p, Example)
    assert "field 'level'" in str(e.value) and ":1:" in str(e.value)
    p.write_text(json.dumps(example(1, colour="red")) + "\n")
    with pytest.raises(DataError) as e:
        read_jsonl(p, Example)
    assert "field 'colour'" in str(e.value)


def test_iter_jsonl_missing_file_and_lazy_errors(tmp_path):
    with pytest.raises(DataError) as e:
        read_jsonl(tmp_path / "absent.jsonl")
    assert "absent.jsonl" in str(e.value)
    p = tmp_path / "d.jsonl"
    p.write_text('{"a": 1}\n{"a": \n')
    it = iter_jsonl(p)
    assert next(it) == {"a": 1}  # good lines before the bad one are yielded
    with pytest.raises(DataError):
        next(it)


def test_write_jsonl_roundtrip(tmp_path):
    p = tmp_path / "x.jsonl"
    n = write_jsonl(p, [Example(**example(i)) for i in range(3)] + [example(9)])
    assert n == 4
    assert [r.id for r in read_jsonl(p, Example)] == ["e0", "e1", "e2", "e9"]


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_writes_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_json(tmp_path / "b.json", {"x": [1, 2]})
    write_jsonl(tmp_path / "c.jsonl", [{"k": 1}])
    atomic_write_text(tmp_path / "a.txt", "again")  # overwrite
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.jsonl"]
    assert (tmp_path / "a.txt").read_text() == "again"
    assert json.loads((tmp_path / "b.json").read_text()) == {"x": [1, 2]}


def test_failed_atomic_write_keeps_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")
    with pytest.raises(TypeError):
        atomic_write_text(p, 12345)  # type: ignore[arg-type]  - write() fails mid-way
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


# ----------------------------------------------------------------------------- hashing


def test_stable_hash_ignores_key_order_but_not_values():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert stable_hash([1, 2]) != stable_hash([2, 1])


def test_fingerprint_of_file_dir_and_missing(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    fp = fingerprint(f)
    f.write_text("y")
    assert fingerprint(f) != fp
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("1")
    fp_dir = fingerprint(d)
    (d / "a.txt").write_text("2")
    assert fingerprint(d) != fp_dir
    with pytest.raises(DataError):
        fingerprint(tmp_path / "missing")


# ----------------------------------------------------------------------------- manifests


def _stage(tmp_path):
    inp = tmp_path / "input.jsonl"
    inp.write_text('{"a": 1}\n')
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.jsonl").write_text('{"r": 1}\n')
    return inp, out


def test_manifest_skip_logic(tmp_path):
    inp, out = _stage(tmp_path)
    cfg = {"lr": 0.1, "n": 3}
    assert not is_complete(out, "train", cfg, {"data": str(inp)})  # no manifest yet
    m = write_manifest(out, "train", cfg, {"data": str(inp)}, {"rows": 1})
    assert m["counts"] == {"rows": 1} and m["outputs"] == ["result.jsonl"]
    # same config (in any key order) + same inputs -> complete
    assert is_complete(out, "train", {"n": 3, "lr": 0.1}, {"data": str(inp)})
    # changed config -> not complete
    assert not is_complete(out, "train", {"lr": 0.2, "n": 3}, {"data": str(inp)})
    # other stage name -> not complete
    assert not is_complete(out, "curate", cfg, {"data": str(inp)})
    # changed input file content -> not complete
    inp.write_text('{"a": 2}\n')
    assert not is_complete(out, "train", cfg, {"data": str(inp)})
    # input gone -> not complete (not an exception)
    inp.unlink()
    assert not is_complete(out, "train", cfg, {"data": str(inp)})


def test_manifest_with_a_stage_dir_input_uses_its_outputs_fingerprint(tmp_path):
    inp, up = _stage(tmp_path)
    write_manifest(up, "generate", {"a": 1}, {}, {})
    down = tmp_path / "down"
    down.mkdir()
    write_manifest(down, "curate", {"b": 1}, {"traces": str(up)}, {})
    assert is_complete(down, "curate", {"b": 1}, {"traces": str(up)})
    # the upstream stage re-runs and produces different outputs -> downstream is stale
    (up / "result.jsonl").write_text('{"r": 2}\n')
    write_manifest(up, "generate", {"a": 1}, {}, {})
    assert not is_complete(down, "curate", {"b": 1}, {"traces": str(up)})


def test_manifest_contents_and_exclusions(tmp_path):
    _, out = _stage(tmp_path)
    (out / ".hidden").write_text("x")
    (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-2" / "w.bin").write_text("w")
    m = write_manifest(out, "s", {"k": 1}, {}, {"n": 1}, extra={"note": "hi"}, started=0.0)
    assert m["outputs"] == ["result.jsonl"]
    on_disk = read_manifest(out)
    assert on_disk == json.loads(json.dumps(m))
    for key in ("stage", "config", "config_hash", "inputs", "counts", "outputs_fingerprint", "versions",
                "finished_at", "seconds", "note"):
        assert key in on_disk, key
    assert on_disk["versions"]["thinkling"]


def test_outputs_fingerprint_tracks_output_content(tmp_path):
    _, out = _stage(tmp_path)
    a = write_manifest(out, "s", {}, {}, {})["outputs_fingerprint"]
    b = write_manifest(out, "s", {}, {}, {})["outputs_fingerprint"]
    (out / "result.jsonl").write_text('{"r": 9}\n')
    c = write_manifest(out, "s", {}, {}, {})["outputs_fingerprint"]
    assert a == b != c


def test_invalidate_and_corrupt_manifest(tmp_path):
    _, out = _stage(tmp_path)
    write_manifest(out, "s", {}, {}, {})
    assert is_complete(out, "s", {}, {})
    invalidate(out)
    assert not (out / MANIFEST).exists() and not is_complete(out, "s", {}, {})
    invalidate(out)  # idempotent
    (out / MANIFEST).write_text("{half a manif")
    assert read_manifest(out) is None and not is_complete(out, "s", {}, {})


def test_atomic_writes_get_the_mode_a_plain_open_would(tmp_path):
    import os

    from thinkling.artifacts import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == os.stat(tmp_path / "b.txt").st_mode & 0o777


def test_a_stage_dir_has_no_private_files_once_its_manifest_is_written(tmp_path, tiny_model):
    """Model weights are written 0600 by transformers; the manifest gives them the mode of every other
    artifact (what a plain open() gives), so a shared run dir is readable as a whole."""
    import os
    import shutil

    from thinkling.artifacts import write_manifest

    out = tmp_path / "stage"
    shutil.copytree(tiny_model, out)
    (out / "model.safetensors").chmod(0o600)
    (out / "plain.txt").write_text("x")
    write_manifest(out, "train", {}, {}, {})
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert set(modes.values()) == {os.stat(out / "plain.txt").st_mode & 0o777}, modes

"""The ``thinkling`` command line: one subcommand per stage, plus ``run``, ``report``, ``serve`` and
``quickstart``.

Every stage takes ``--config FILE.yaml`` and dotted ``key=value`` overrides; unknown keys and bad
values are errors naming the key, and ``thinkling <stage> --help`` lists every key. A command imports
its stage when it runs (and its config only for its own ``--help``): the stages bring torch,
transformers and the engines, and ``thinkling --help`` or a typo should answer in a fraction of a second.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from thinkling.artifacts import DataError
from thinkling.config import ConfigError, fields_help, load_config
from thinkling.models.loading import ModelLoadError

console = Console(stderr=True)
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="thinkling: distill chain-of-thought from a teacher into a small student that reasons with few tokens.\n\n"
         "Stages: generate -> curate -> train -> eval; `run` chains them from a recipe; `quickstart` runs the "
         "whole pipeline offline on CPU in minutes; `serve` puts a student behind an OpenAI-compatible API.",
    rich_markup_mode=None,
)

DEBUG_ENV = "THINKLING_DEBUG"


_state = {"debug": False}


@app.callback()
def _options(debug: Annotated[bool, typer.Option(
        "--debug", help=f"show the full traceback of an error instead of one line (or set {DEBUG_ENV}=1)")] = False,
             ) -> None:
    _state["debug"] = debug


ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config file for this stage")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="dotted key=value overrides, e.g. lr=3e-4 task.n=50")]
ForceOpt = Annotated[bool, typer.Option("--force", help="re-run even if the output manifest matches")]
SeedsOpt = Annotated[Optional[str], typer.Option(
    "--seeds", help="train and evaluate every student once per seed, comma-separated, e.g. 0,1,2 (the recipe's "
                    "`seeds`, same as seeds=[0,1,2]): out/train/<student>/seed-<k>/, results per seed plus an "
                    "aggregate row (seed: all) per student, claims in every seed or on the aggregate")]


def seeds_override(seeds: str | None) -> list[str]:
    """``--seeds 0,1,2`` as the override ``seeds=[0,1,2]`` (none when not given); a ConfigError naming the
    option for anything but distinct integers >= 0."""
    if seeds is None:
        return []
    parts = [x.strip() for x in seeds.split(",")]
    if not all(x.isdigit() for x in parts):
        raise ConfigError(f"--seeds: {seeds!r} is not a comma-separated list of seeds (integers >= 0), e.g. 0,1,2")
    return [f"seeds=[{','.join(str(int(x)) for x in parts)}]"]


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/] {escape(msg)}", markup=True, highlight=False)
    raise typer.Exit(2)


def _guard(fn):
    """Turn expected user errors into a one-line message naming the file, key or field, and exit code 2
    (no traceback unless ``--debug`` or ``THINKLING_DEBUG=1``); a stage that failed exits 1."""
    try:
        return fn()
    except Exception as e:
        if _state["debug"] or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        message, code = user_error(e)
        if message is None:
            raise
        console.print(f"[red]{'error' if code == 2 else 'failed'}:[/] {escape(message)}", markup=True,
                      highlight=False)
        raise typer.Exit(code) from None


def user_error(e: Exception) -> tuple[str | None, int]:
    """(one-line message, exit code) of an error a user can fix, or (None, 0) for a bug (a traceback)."""
    if isinstance(e, (ConfigError, DataError, ModelLoadError)):
        return str(e), 2
    if isinstance(e, UnicodeDecodeError):  # a reader that did not name its file
        return f"a file is not UTF-8 text ({e.reason} at byte {e.start}); run with --debug to see which", 2
    if isinstance(e, OSError):  # an out dir that is a file, under a file, unwritable; a full disk
        where = e.filename or "a file"
        what = e.strerror or type(e).__name__
        hint = {errno.ENOSPC: "; free some space and run again (nothing already written is lost)",
                errno.EFBIG: "; the file grew past a size limit (ulimit -f)",
                errno.EACCES: "; choose a writable place", errno.EROFS: "; choose a writable place",
                errno.ENOTDIR: " (a path above it is a file)", errno.EEXIST: " (a file is in the way)"}
        return f"{where}: {what}{hint.get(e.errno or 0, '')}", 2
    if isinstance(e, (KeyError, ValueError)):
        return str(e).strip("'\""), 2
    if isinstance(e, RuntimeError):  # a stage that failed (e.g. a training subprocess); its log is named
        return str(e), 1
    return None, 0


def _keys_help(module: str, cls: str) -> type[typer.core.TyperCommand]:
    """A command class whose ``--help`` ends with every config key of ``module.cls`` (imported only then)."""

    class Command(typer.core.TyperCommand):
        def format_epilog(self, ctx, formatter) -> None:
            self.epilog = fields_help(getattr(importlib.import_module(module), cls))
            super().format_epilog(ctx, formatter)

    return Command


@app.command(cls=_keys_help("thinkling.generate.stage", "GenerateConfig"))
def generate(config: ConfigOpt = None, overrides: Overrides = None, force: ForceOpt = False) -> None:
    """Generate teacher traces for the problems of a task (append-only, keyed, resumable).

    Example: thinkling generate out=runs/x/traces task.name=arithmetic task.n=1000 teacher.style=long
    """
    from thinkling.generate.stage import GenerateConfig
    from thinkling.generate.stage import generate as run_generate

    _guard(lambda: run_generate(load_config(GenerateConfig, config, overrides or []), force=force, console=console))


@app.command(cls=_keys_help("thinkling.curate.stage", "CurateConfig"))
def curate(
    config: ConfigOpt = None, overrides: Overrides = None, force: ForceOpt = False,
    ops: Annotated[Optional[str], typer.Option(help="ops to run in order, comma-separated (same as ops=...)")] = None,
) -> None:
    """Curate traces into training data with named ops, counting what each keeps and drops per reason.

    Ops: verify, dedup, decontaminate, difficulty, compress (DAP), chunk, knowledge, select. Each op
    writes a view keyed by its options, so changing one op's options re-runs only it and what follows.

    Example: thinkling curate traces=runs/x/traces out=runs/x/data --ops verify,difficulty,compress
    difficulty.method=judge
    """
    from thinkling.curate.stage import CurateConfig
    from thinkling.curate.stage import curate as run_curate

    extra = [f"ops=[{ops}]"] if ops else []
    _guard(lambda: run_curate(load_config(CurateConfig, config, (overrides or []) + extra), force=force,
                              console=console))


@app.command(cls=_keys_help("thinkling.train.config", "TrainConfig"))
def train(config: ConfigOpt = None, overrides: Overrides = None, force: ForceOpt = False) -> None:
    """Train a student on curated data (transformers Trainer; works under `accelerate launch`).

    Example: thinkling train data=runs/x/data out=runs/x/student model=tiny budget_tokens=2000000
    """
    from thinkling.train.config import TrainConfig
    from thinkling.train.stage import train as run_train

    _guard(lambda: run_train(load_config(TrainConfig, config, overrides or []), force=force, console=console))


@app.command(name="eval", cls=_keys_help("thinkling.evaluate.config", "EvalConfig"))
def eval_(config: ConfigOpt = None, overrides: Overrides = None, force: ForceOpt = False) -> None:
    """Evaluate students on a task: accuracy with 95% CI and token cost per level -> results.json.

    Example: thinkling eval out=runs/x/eval models=[concise=runs/x/student] task.name=arithmetic task.split=test
    """
    from thinkling.evaluate.config import EvalConfig
    from thinkling.evaluate.stage import evaluate as run_eval

    _guard(lambda: run_eval(load_config(EvalConfig, config, overrides or []), force=force, console=console))


@app.command(cls=_keys_help("thinkling.serve.config", "ServeConfig"))
def serve(
    config: ConfigOpt = None, overrides: Overrides = None,
    port: Annotated[Optional[int], typer.Option("--port", help="TCP port (same as port=...)")] = None,
    host: Annotated[Optional[str], typer.Option("--host", help="interface to bind (default 127.0.0.1)")] = None,
    reasoning_parser: Annotated[Optional[str], typer.Option(
        "--reasoning-parser", help="'think': <think> part of chat replies as message.reasoning_content")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", help="require 'Authorization: Bearer KEY' (prefer $THINKLING_SERVE_API_KEY: a command "
        "line is visible to other users of the machine)")] = None,
) -> None:
    """Serve a student (any HF causal LM, with LoRA adapters) behind an OpenAI-compatible HTTP API.

    Endpoints /v1/models, /v1/chat/completions, /v1/completions (streaming, n, seed, stop, logprobs, a
    thinking budget); concurrent requests are batched. See docs/serve.md.

    Example: thinkling serve model=runs/x/student --port 8000 adapters=[a=runs/x/lorid/adapters/deep]
    """
    from thinkling.serve.config import ServeConfig
    from thinkling.serve.server import serve as run_serve

    extra = [f"{k}={v}" for k, v in (("port", port), ("host", host), ("reasoning_parser", reasoning_parser),
                                                   ("api_key", api_key))
             if v is not None]
    _guard(lambda: run_serve(load_config(ServeConfig, config, (overrides or []) + extra), console=console))


@app.command(cls=_keys_help("thinkling.pipeline", "Recipe"))
def run(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML (see recipes/)")],
    overrides: Overrides = None,
    force: ForceOpt = False,
    seeds: SeedsOpt = None,
) -> None:
    """Run a recipe: generate -> curate -> train -> eval -> report. Finished stages are skipped.

    With --seeds 0,1,2 (or `seeds: [0, 1, 2]` in the recipe) every student is trained and evaluated once per
    seed on the same data; the report gives each seed's rows and their aggregate (mean, 95% interval across
    seeds, pooled Wilson interval), and a claim holds in every seed (over: every, the default) or on the
    aggregate (over: aggregate).

    Example: thinkling run recipes/quickstart.yaml out=runs/qs train.long.budget_tokens=4000000 --seeds 0,1,2
    """
    from thinkling.pipeline import load_recipe
    from thinkling.pipeline import run as run_recipe

    def go():
        plan = load_recipe(recipe, [*(overrides or []), *seeds_override(seeds)])
        summary = run_recipe(plan, force=force, console=console)
        _print_summary(summary)

    _guard(go)


def _print_summary(summary: dict) -> None:
    console.print(f"[bold green]done[/] in {summary['timings']['total']:.0f}s: report {summary['report']}")
    from thinkling.pipeline import describe_check

    for c in summary.get("checks", []):
        console.print("  " + describe_check(c).strip("| ").replace(" | ", "  ->  "), markup=False)


@app.command()
def report(
    results: Annotated[list[Path], typer.Argument(help="eval dirs (results.json, maybe samples.jsonl and "
                                                       "validation.json) or results.json files; merged")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")] = Path("report"),
    title: Annotated[str, typer.Option("--title", help="report title")] = "thinkling report",
    max_samples: Annotated[int, typer.Option("--max-samples", min=0,
                                             help="example traces embedded per model, task and strategy")] = 50,
) -> None:
    """Write OUT/report.md (PNG plots beside it) and one self-contained OUT/report.html from eval results.

    The page shows the accuracy-vs-tokens frontier, tokens per level, every result row with its
    protocol, evidence-regime gaps, pooled logic groups and browsable example traces with filters.
    Rows with train_compute add accuracy against training compute (plot and table); a model trained per
    seed shows its aggregate rows first and each seed's after. Rows repeated across inputs (same model,
    task, level, strategy, regime, seed): the later input wins.

    Example: thinkling report runs/x/eval runs/y/eval/results.json --out runs/report --title "x vs y"
    """
    from thinkling.report import build_report

    def go():
        r = build_report(results, out, title=title, max_samples=max_samples)
        console.print(f"[bold green]report[/]: {r['rows']} rows, {r['samples']} samples -> {r['markdown']} "
                      f"and {r['html']}")

    _guard(go)


QUICKSTART = Path(__file__).parent / "recipes" / "quickstart.yaml"


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")] = Path("runs/quickstart"),
    overrides: Overrides = None,
    force: ForceOpt = False,
    seeds: SeedsOpt = None,
) -> None:
    """Run the whole pipeline offline on CPU in about 11 minutes on 2 cores (built-in recipe).

    Generates arithmetic traces with the oracle teacher in three styles (long, concise, none), trains
    three tiny students from scratch, evaluates them per difficulty level and writes
    OUT/report.md, OUT/results.json and OUT/frontier.png.
    """
    from thinkling.pipeline import load_recipe
    from thinkling.pipeline import run as run_recipe

    def go():
        plan = load_recipe(QUICKSTART, [f"out={out}", *(overrides or []), *seeds_override(seeds)])
        summary = run_recipe(plan, force=force, console=console)
        _print_summary(summary)

    _guard(go)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        console.print("[yellow]interrupted[/]: finished work is kept; re-run the same command to continue")
        sys.exit(130)


if __name__ == "__main__":
    main()

"""``thinkling run RECIPE.yaml``: chain generate -> curate -> train -> eval -> report.

A recipe names its stages; later stages refer to earlier ones by name (``traces: long``) or to a
path. Every stage writes its own directory under ``out`` and is skipped on a re-run when its
manifest matches, so an interrupted run is continued by running the same command again.
Students can train in parallel processes (``parallel: 2``, one torch thread each), the best use of
a small CPU; on GPUs, launch ``thinkling train`` with ``accelerate launch`` instead.

The package: ``recipe`` (the recipe's config and its resolution into stage configs), ``students``
(training them, in parallel processes when asked), ``claims`` (the recipe's checks on the results)
and ``run`` (the whole chain, then the report).
"""

from thinkling.pipeline.claims import check_claims, describe_check
from thinkling.pipeline.recipe import Plan, Recipe, load_recipe
from thinkling.pipeline.run import run

__all__ = ["Plan", "Recipe", "check_claims", "describe_check", "load_recipe", "run"]

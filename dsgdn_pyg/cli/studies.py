r"""The study tooling that ``dsgdn-pyg benchmark --scenario`` and ``dsgdn-pyg experiment`` run:
the scenarios and the paper's experiment grids live with the benchmark scripts in the
repository's top-level ``benchmarks/`` folder (as PyG keeps its ``benchmark/``), not in the
library; these commands import them from the checkout the package runs from.
"""
import importlib
import os
import sys
from types import ModuleType

import click

#: The checkout: the folder that holds dsgdn_pyg/ (and benchmarks/).
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def study(name: str) -> ModuleType:
    r"""The module ``benchmarks.NAME`` of the checkout (e.g. ``'experiments'``,
    ``'scenario_runner'``).

    Raises:
        click.ClickException: If the package does not run from a checkout with
            ``benchmarks/`` (an installed wheel has no study tooling).
    """
    if not os.path.isfile(os.path.join(REPOSITORY, 'benchmarks', '__init__.py')):
        raise click.ClickException(
            f"this command runs the study tooling of the repository's benchmarks/ folder, "
            f"which is not beside {os.path.join(REPOSITORY, 'dsgdn_pyg')}; run it from a "
            f"checkout (git clone ... && pip install -e .)")
    if REPOSITORY not in sys.path:
        sys.path.append(REPOSITORY)
    return importlib.import_module(f'benchmarks.{name}')

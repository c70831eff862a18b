r"""The ``dsgdn-pyg`` command line: a thin click layer over :mod:`dsgdn_pyg.train`,
:mod:`dsgdn_pyg.inference`, :mod:`dsgdn_pyg.profile` and the study tooling of the
repository's ``benchmarks/`` (:mod:`dsgdn_pyg.cli.studies`), one module per command (:mod:`dsgdn_pyg.cli.options`: what they share).

User mistakes (bad option values, unknown datasets, missing or mismatched checkpoints) end
with an ``Error: ...`` message and a non-zero exit status, never with a traceback.
"""
import click

from dsgdn_pyg import __version__


@click.group(context_settings={'help_option_names': ['-h', '--help']})
@click.version_option(__version__, '--version', prog_name='dsgdn-pyg')
def main():
    r"""AMB-DSGDN for multimodal emotion recognition in conversation, on PyTorch Geometric.

    Start with `dsgdn-pyg train --out runs/first`, then `dsgdn-pyg evaluate --model
    runs/first/model` and `dsgdn-pyg predict --model runs/first/model --input talk.csv`.
    """
    from dsgdn_pyg.memory import release_large_allocations

    # Long dialogues fragment glibc's heap (dsgdn_pyg.memory); costs nothing on short ones.
    release_large_allocations()


from dsgdn_pyg.cli import (benchmark, evaluate, experiment, export, predict, serve,  # noqa: E402
                           stream, train)
from dsgdn_pyg.names import EXPERIMENT_NAMES  # noqa: E402

for _module in (train, evaluate, predict, stream, serve, export, benchmark, experiment):
    main.add_command(getattr(_module, _module.__name__.rpartition('.')[2]))

__all__ = ['main', 'EXPERIMENT_NAMES']

r"""``python -m dsgdn_pyg.cli``: the ``dsgdn-pyg`` command."""
from dsgdn_pyg.cli import main

main(prog_name='dsgdn-pyg')

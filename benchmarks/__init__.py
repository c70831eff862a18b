r"""The measurement scripts of the repository (not part of the installed package); run them as
``python benchmarks/NAME.py``. Their shared helpers are in :mod:`benchmarks.common`."""

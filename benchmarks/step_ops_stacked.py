r"""Runs the operator count of ``../shared/tools/step_ops.py`` (one steady-state training step
at IEMOCAP shapes, on the trainer's path) with the graph blocks of all modalities stacked, as
the model runs them by default on CUDA, so that the launches of a GPU step can be counted on a
CPU. Without ``--stacked`` the model's own default for the device is counted (on the CPU, the
blocks one by one), as the tool itself counts it.

    python benchmarks/step_ops_stacked.py --stacked [--tool ../shared/tools/step_ops.py] [cpu]
"""
import os
import runpy
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dsgdn_pyg.models import AMBDSGDN  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    tool = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'tools', 'step_ops.py')
    if '--tool' in args:
        i = args.index('--tool')
        tool = args[i + 1]
        del args[i:i + 2]
    if '--stacked' in args:
        args.remove('--stacked')
        AMBDSGDN.stack_modalities = True  # the class default the tool's model inherits
    if not os.path.exists(tool):
        raise SystemExit(f"{tool}: no such file (give the tool's path with --tool)")
    sys.argv = [tool] + args
    runpy.run_path(tool, run_name='__main__')


if __name__ == '__main__':
    main()

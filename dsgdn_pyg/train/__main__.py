r"""``python -m dsgdn_pyg.train CONFIG.json METRICS.json``: the program of every process that
``dsgdn-pyg train --nproc-per-node N`` starts through torchrun
(:func:`dsgdn_pyg.train.distributed.main`)."""
import sys

from dsgdn_pyg.train.distributed import main

sys.exit(main())

r"""``python -m dsgdn_pyg.train CONFIG.json METRICS.json``: the program of every process that
``dsgdn-pyg train --nproc-per-node N`` starts through torchrun
(:func:`dsgdn_pyg.train.distributed.launch`).

It lives here, not in :mod:`dsgdn_pyg.train.distributed`, because it calls the trainer, which
imports the distributed helpers: the two modules would import each other."""
import json
import os
import sys
from typing import Optional, Sequence

from dsgdn_pyg.io import atomic_write_text
from dsgdn_pyg.train.config import ConfigError, TrainConfig
from dsgdn_pyg.train.distributed import DistributedError, lost_peer


def main(argv: Optional[Sequence[str]] = None) -> int:
    r"""The program of every process started by :func:`launch`:
    ``python -m dsgdn_pyg.train CONFIG.json METRICS.json``."""
    from dsgdn_pyg.memory import release_large_allocations
    from dsgdn_pyg.train.checkpoint import CheckpointError
    from dsgdn_pyg.train.trainer import train

    config_path, metrics_path = argv if argv is not None else sys.argv[1:]
    release_large_allocations()  # as the CLI does
    prefix = f"Error (process {os.environ.get('RANK', '?')}): "
    try:
        with open(config_path) as f:
            config = TrainConfig(**json.load(f))
        metrics = train(config)
    except (ConfigError, CheckpointError, DistributedError, OSError) as e:
        print(prefix + str(e), file=sys.stderr, flush=True)
        return 1
    except RuntimeError as e:
        if not lost_peer(e):
            raise
        # Another process died (its own error, or its signal, is reported by the launcher):
        # this one's traceback through the collective would only bury that.
        print(f"{prefix}lost contact with the other processes of the run "
              f"({str(e).splitlines()[0][:200]})", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    if int(os.environ.get('RANK', 0)) == 0:
        atomic_write_text(metrics_path, json.dumps(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(main())

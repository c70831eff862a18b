r"""What a training run reports while it runs: its progress bar and lines, and the averages
of adaptive modality dropout over an epoch."""
import sys
from typing import Any, Dict, Optional, Sequence

import torch

from dsgdn_pyg.nn.adaptive_modality_dropout import AdaptiveModalityDropout


class ModalityDropoutStats:
    r"""Averages the drop probabilities and scores of adaptive modality dropout over an epoch,
    as device tensors (read back once per epoch)."""
    def __init__(self, model: torch.nn.Module, modalities: Sequence[str]):
        self.module = next((m for m in model.modules()
                            if isinstance(m, AdaptiveModalityDropout)), None)
        self.modalities = list(modalities)
        self.reset()

    def reset(self):
        self.steps = 0
        self.q = self.perf = self.executed = None

    def active(self) -> bool:
        return self.module is not None and self.module.active

    def update(self):
        m = self.module
        if m.last_q is None:
            return
        q, perf, exe = m.last_q.detach().float(), m.last_perf.detach().float(), \
            m.last_executed.detach().float()
        if self.steps == 0:
            self.q, self.perf, self.executed = q, perf, exe
        else:
            self.q, self.perf, self.executed = self.q + q, self.perf + perf, self.executed + exe
        self.steps += 1

    def summary(self) -> Optional[Dict[str, Any]]:
        if self.steps == 0:
            return None
        q = (self.q / self.steps).tolist()
        perf = (self.perf / self.steps).tolist()
        return {
            'active_steps': self.steps,
            'executed_share': float(self.executed) / self.steps,
            'mean_q': dict(zip(self.modalities, q)),
            'mean_batch_f1': {m: 100.0 * p for m, p in zip(self.modalities, perf)},
        }


def progress(iterable, total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    # disable=None: a bar only on a terminal, so logs redirected to a file stay clean.
    return tqdm(iterable, total=total, desc=desc, leave=False, disable=True if quiet else None,
                file=sys.stderr, dynamic_ncols=True, unit='batch')


def echo(message: str, quiet: bool, err: bool = False):
    if not quiet:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)

r"""Useful FLOPs (the unpadded work, CSR products included) and the machine's GEMM FLOP/s
at the model's matrix shapes."""
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
import torch_geometric
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Batch, Data

from dsgdn_pyg.benchmark.scenarios import train_step
from dsgdn_pyg.models import AMBDSGDN
# FlopCounterMode counts dense matrix products only; the sparse model's CSR products would be
# missed. These count 2 multiply-adds per stored entry and dense column.
def _sparse_addmm_flop(self, mat1, mat2, *args, out_val=None, **kwargs) -> int:
    return 2 * mat1._nnz() * mat2.size(-1)


def _sparse_sampled_addmm_flop(self, mat1, mat2, *args, out_val=None, **kwargs) -> int:
    return 2 * self._nnz() * mat1.size(-1)


_sparse_addmm_flop._get_raw = True
_sparse_sampled_addmm_flop._get_raw = True


def count_flops(fn: Callable[[], Any]) -> int:
    r"""Floating-point operations of :obj:`fn()` as counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (matrix products, convolutions,
    attention), plus the sparse-dense products of CSR matrices, which it does not count."""
    mapping = {torch.ops.aten._sparse_addmm: _sparse_addmm_flop,
               torch.ops.aten.sparse_sampled_addmm: _sparse_sampled_addmm_flop}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return int(counter.get_total_flops())


def useful_flops_per_dialogue(model: AMBDSGDN, dialogues: Sequence[Data],
                              seed: int = 0) -> List[int]:
    r"""FLOPs of a training step's forward and backward (no optimizer step) on every dialogue
    alone: the unpadded work, since a batch of one dialogue pads nothing."""
    torch.manual_seed(seed)
    flops = []
    for dialogue in dialogues:
        batch = Batch.from_data_list([dialogue])
        flops.append(count_flops(lambda: train_step(model, batch, None)))
        model.zero_grad(set_to_none=True)
    return flops


def linear_shapes(model: torch.nn.Module) -> Dict[Tuple[int, int], int]:
    r"""How many of the model's :class:`torch.nn.Linear` layers (and attention input
    projections, and PyG :class:`~torch_geometric.nn.dense.Linear` layers) have each
    :obj:`(in, out)` shape, in order of first appearance."""
    shapes: Dict[Tuple[int, int], int] = {}
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            shape = (module.in_features, module.out_features)
        elif isinstance(module, torch.nn.MultiheadAttention):
            shape = (module.embed_dim, 3 * module.embed_dim)  # the packed q/k/v projection
        elif isinstance(module, torch_geometric.nn.dense.Linear) and module.in_channels > 0:
            shape = (module.in_channels, module.out_channels)
        else:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
    return shapes


def gemm_flops_per_s(num_rows: int, shapes: Dict[Tuple[int, int], int],
                     min_seconds: float = 0.2, seed: int = 0) -> Dict[str, Any]:
    r"""The machine's :obj:`torch.mm` throughput at the model's matrix shapes.

    Every :obj:`(F_in, F_out)` is timed as :obj:`[num_rows, F_in] @ [F_in, F_out]`, repeated
    for at least :obj:`min_seconds` after one warm-up product. The result is the rate at which
    the model's products would run: all their FLOPs (:math:`2 N F_{in} F_{out}` per product,
    times the number of layers of that shape) over the time they take at the measured rates,
    so that tiny products (the classifiers) weigh by their share of the work.

    Args:
        num_rows (int): :math:`N`, e.g. the utterances of the largest batch.
        shapes (Dict[Tuple[int, int], int]): Layer count per :obj:`(F_in, F_out)`, see
            :func:`linear_shapes`.
        min_seconds (float, optional): Time per shape. (default: :obj:`0.2`)
        seed (int, optional): Seed of the random matrices. (default: :obj:`0`)
    """
    if num_rows < 1 or not shapes:
        raise ValueError(f"need 'num_rows' >= 1 and at least one shape, got {num_rows} and "
                         f"{dict(shapes)}")
    gen = torch.Generator().manual_seed(seed)
    work, seconds_at_rate, per_shape = 0.0, 0.0, []
    for (f_in, f_out), count in shapes.items():
        a = torch.randn(num_rows, f_in, generator=gen)
        b = torch.randn(f_in, f_out, generator=gen)
        torch.mm(a, b)
        reps, start = 0, time.perf_counter()
        while True:
            torch.mm(a, b)
            reps += 1
            seconds = time.perf_counter() - start
            if seconds >= min_seconds:
                break
        flops = 2 * num_rows * f_in * f_out
        rate = flops * reps / seconds
        work += count * flops
        seconds_at_rate += count * flops / rate
        per_shape.append(dict(shape=[num_rows, f_in, f_out], layers=count, flops_per_s=rate))
    return dict(gemm_flops_per_s=work / seconds_at_rate, gemm_rows=num_rows,
                gemm_shapes=per_shape)



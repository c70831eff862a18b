from .diff_gat_conv import DiffGATConv
from .dense import DenseDiffGATConv
from .diff_rgcn import DiffRGCN
from .utterance_encoder import UtteranceEncoder
from .adaptive_modality_dropout import AdaptiveModalityDropout
from .msde import MSDE

__all__ = [
    'DiffGATConv',
    'DenseDiffGATConv',
    'DiffRGCN',
    'UtteranceEncoder',
    'AdaptiveModalityDropout',
    'MSDE',
]

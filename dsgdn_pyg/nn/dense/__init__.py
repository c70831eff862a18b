from .dense_diff_gat_conv import DenseDiffGATConv
from .dense_diff_rgcn import DenseDiffRGCN

__all__ = ['DenseDiffGATConv', 'DenseDiffRGCN']

from .dense_diff_gat_conv import DenseDiffGATConv

__all__ = ['DenseDiffGATConv']

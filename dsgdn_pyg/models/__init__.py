from .amb_dsgdn import AMBDSGDN, ModelOutput

__all__ = ['AMBDSGDN', 'ModelOutput']

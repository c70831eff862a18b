from .corpus import MODALITIES, DialogueCorpus, feature_key, make_dialogue
from .graph import (NUM_RELATIONS, PAST_RELATIONS, RELATION_NAMES, SUBGRAPH_RELATIONS,
                    DialogueGraph,
                    banded_csr, dense_dialogue_relations, dialogue_edges, relation_subgraph)
from .hetero import CrossModalGraph, cross_modal_edge_types, cross_modal_edges

__all__ = [
    'MODALITIES',
    'DialogueCorpus',
    'feature_key',
    'make_dialogue',
    'NUM_RELATIONS',
    'PAST_RELATIONS',
    'RELATION_NAMES',
    'SUBGRAPH_RELATIONS',
    'DialogueGraph',
    'dialogue_edges',
    'banded_csr',
    'dense_dialogue_relations',
    'relation_subgraph',
    'CrossModalGraph',
    'cross_modal_edges',
    'cross_modal_edge_types',
]

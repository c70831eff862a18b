import dataclasses

import pytest

from dsgdn_pyg.train import ConfigError, TrainConfig, parse_modalities, preset_defaults
from dsgdn_pyg.train.config import (PUBLISHED_IEMOCAP, PUBLISHED_MELD, check_value,
                                    config_fields, parse_fusion_weights)
from dsgdn_pyg.train.config_file import read_toml, resolve_config


def test_preset_precedence():
    meld = TrainConfig(dataset='synthetic-meld')
    for key, value in PUBLISHED_MELD.items():
        assert getattr(meld, key) == value, key
    # An explicit value beats the preset; untouched fields keep it.
    config = TrainConfig(dataset='synthetic-meld', lr=1e-3)
    assert config.lr == 1e-3 and config.batch_size == 64 and config.window == 6
    iemocap = TrainConfig(dataset='pickle:/data/iemocap.pkl')
    for key, value in PUBLISHED_IEMOCAP.items():
        assert getattr(iemocap, key) == value, key
    fast = preset_defaults('synthetic-iemocap')
    assert fast['batch_size'] == 16 and fast['window'] == 20 and fast['class_weights']
    # A config round-trips through its dict (what checkpoints store).
    assert TrainConfig(**config.to_dict()) == config


def test_resolve_config_order(tmp_path):
    path = tmp_path / 'run.toml'
    path.write_text('dataset = "synthetic-meld"\nepochs = 3\nbatch-size = 8\n'
                    'modalities = "t,a"\n')
    file_values = read_toml(str(path))
    config = resolve_config({'epochs': 5}, file_values)
    assert config.epochs == 5  # explicit beats file
    assert config.batch_size == 8  # file beats preset
    assert config.window == PUBLISHED_MELD['window']  # preset of the file's dataset
    assert config.hidden_channels == 512  # preset of the file's dataset
    assert config.modalities == ['t', 'a']
    # The same values under a [train] table.
    table = tmp_path / 'table.toml'
    table.write_text('[train]\n' + path.read_text())
    assert read_toml(str(table)) == file_values


@pytest.mark.parametrize('kwargs, field', [
    (dict(window=-1), 'window'),
    (dict(lr=0.0), 'lr'),
    (dict(lr=float('nan')), 'lr'),
    (dict(epochs=0), 'epochs'),
    (dict(device='tpu'), 'device'),
    (dict(modalities='t,x'), 'modalities'),
    (dict(modalities=''), 'modalities'),
    (dict(dropout=1.0), 'dropout'),
    (dict(conv='gcn'), 'conv'),
    (dict(select_on='train'), 'select_on'),
    (dict(fusion_weights='t=-1'), 'fusion_weights'),
    (dict(resume=True), 'resume'),  # resume without an output directory
    (dict(batch_size=2.5), 'batch_size'),
    (dict(num_threads=0), 'num_threads'),
    (dict(text_encoder='minilm'), 'text_encoder'),  # not a transcript dataset
    (dict(dataset='csv:x', text_finetune_epochs=-1), 'text_finetune_epochs'),
    (dict(dataset='csv:x', text_encoder=''), 'text_encoder'),
])
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"'{field}'") as info:
        TrainConfig(**kwargs)
    assert info.value.field == field


def test_parsers():
    assert parse_modalities('v, t') == ['t', 'v']
    assert parse_modalities('tav') == ['t', 'a', 'v']
    assert parse_modalities(['a']) == ['a']
    with pytest.raises(ConfigError, match='twice'):
        parse_modalities('t,t')
    assert parse_fusion_weights('t=0.8,v=0.1,a=0.1') == {'t': 0.8, 'a': 0.1, 'v': 0.1}
    with pytest.raises(ConfigError, match='fusion_weights'):
        parse_fusion_weights('t:0.8')




def test_csv_table_becomes_loader_option(tmp_path):
    path = tmp_path / 'run.toml'
    path.write_text('dataset = "csv:transcripts"\nepochs = 3\n\n'
                    '[csv]\ntext = "utterance"\ndialogue = ["show", "scene"]\n'
                    'files = { train = "a.csv", valid = "b.csv", test = "c.csv" }\n\n'
                    '[data_options]\nsvd_dim = 64\n')
    values = read_toml(str(path))
    assert values['epochs'] == 3
    assert values['data_options'] == {
        'svd_dim': 64,
        'csv': {'text': 'utterance', 'dialogue': ['show', 'scene'],
                'files': {'train': 'a.csv', 'valid': 'b.csv', 'test': 'c.csv'}}}
    config = resolve_config({'epochs': 5}, values)
    assert config.epochs == 5 and config.data_options['csv']['text'] == 'utterance'


def test_csv_must_be_a_table(tmp_path):
    path = tmp_path / 'run.toml'
    path.write_text('csv = "x"\n')
    with pytest.raises(ConfigError, match=r'\[csv\] must be a table'):
        read_toml(str(path))


@pytest.mark.parametrize('setting', [dict(fusion_weights='t=1'), dict(context_window=4),
                                     dict(checkpoint_activations=True)])
def test_amb_dsgdn_settings_are_refused_for_sync_tva(setting):
    TrainConfig(**setting)  # fine for AMB-DSGDN
    with pytest.raises(ConfigError, match="AMB-DSGDN setting") as info:
        TrainConfig(model='sync-tva', **setting)
    assert info.value.field == next(iter(setting))


def test_modalities_agree_with_the_data_package():
    from dsgdn_pyg.data import MODALITIES
    from dsgdn_pyg.train import config
    assert config.MODALITIES == MODALITIES


def test_model_names_agree_with_the_models():
    from dsgdn_pyg.models import MODELS
    from dsgdn_pyg.train.config import MODEL_NAMES
    assert tuple(MODELS) == MODEL_NAMES


def test_every_field_is_declared_and_documented():
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata.get('setting')
        assert meta is not None and meta.help, f.name
        # The generated docstring has one entry per field.
        assert f'    {f.name} (' in TrainConfig.__doc__, f.name


@pytest.mark.parametrize('name, good, bad, fragment', [
    ('window', 0, -1, 'integer >= 0'),
    ('epochs', 1, 0, 'integer >= 1'),
    ('batch_size', 4, 2.5, 'integer >= 1'),
    ('lr', 1e-3, 0.0, 'positive'),
    ('weight_decay', 0.0, -1e-5, 'non-negative'),
    ('dropout', 0.0, 1.0, '[0, 1)'),
    ('q_base', 1.0, 1.5, '[0, 1]'),
    ('num_dialogues', 3, 2, 'integer >= 3'),
    ('model', 'sync-tva', 'gcn', "'amb-dsgdn', 'sync-tva'"),
    ('graph', False, 'yes', 'true or false'),
    ('device', 'cuda:1', 'cuda:x', "'cuda:N'"),
])
def test_declared_checks(name, good, bad, fragment):
    assert check_value(name, good) == good
    with pytest.raises(ConfigError) as info:
        check_value(name, bad)
    assert info.value.field == name and fragment in info.value.detail
    assert str(info.value).startswith(f"'{name}' must be")


def test_values_are_normalised():
    config = TrainConfig(modalities='v,t', fusion_weights='t=1,v=3', feature_dims='v=4,t=8',
                         patience=0, data_options={'standardize': False})
    assert config.modalities == ['t', 'v']
    assert config.fusion_weights == {'t': 1.0, 'v': 3.0}
    assert config.feature_dims == {'t': 8, 'v': 4}
    assert config.patience is None  # 0 = off
    assert check_value('feature_dims', 't=16,a=8') == {'t': 16, 'a': 8}


@pytest.mark.parametrize('key, suggestion', [
    ('learning_rate', None), ('batchsize', 'batch_size'), ('hidden-channel', 'hidden_channels'),
    ('epoch', 'epochs'),
])
def test_unknown_toml_key_names_the_closest_field(tmp_path, key, suggestion):
    path = tmp_path / 'run.toml'
    path.write_text(f'{key} = 1\n')
    with pytest.raises(ConfigError) as info:
        read_toml(str(path))
    message = str(info.value)
    assert f"unknown key {key!r}" in message and str(path) in message
    if suggestion is None:
        assert 'did you mean' not in message
    else:
        assert f"did you mean {suggestion!r}?" in message
    assert 'valid keys are ' + ', '.join(sorted(config_fields())) in message


def test_preset_fields_are_the_presets_keys():
    from dsgdn_pyg.train.config import FAST_SYNTHETIC_IEMOCAP, PRESET_FIELDS
    preset_fields = set(PRESET_FIELDS)
    assert preset_fields == set(PUBLISHED_IEMOCAP) == set(PUBLISHED_MELD)
    assert set(FAST_SYNTHETIC_IEMOCAP) <= preset_fields
    for name in preset_fields:  # None = "take the preset's"; no other default
        assert dataclasses.fields(TrainConfig)[config_fields().index(name)].default is None


def test_transcript_text_encoder_defaults(monkeypatch):
    import dsgdn_pyg.text as text

    config = TrainConfig(dataset='meld-csv:somewhere')
    expected = 'minilm' if text.text_extra_available() else 'tfidf'
    assert config.text_encoder == expected
    assert config.loader_options()['text_encoder'] == expected
    assert config.text_finetune_epochs == (2 if expected == 'minilm' else 0)
    monkeypatch.setattr(text, 'text_extra_available', lambda: False)
    config = TrainConfig(dataset='csv:somewhere')
    assert (config.text_encoder, config.text_finetune_epochs) == ('tfidf', 0)
    config = TrainConfig(dataset='csv:x', text_encoder='minilm', text_finetune_epochs=0,
                         data_options={'text_encoder': 'tfidf'})
    assert config.loader_options()['text_encoder'] == 'tfidf'  # an explicit loader option wins
    assert TrainConfig().text_encoder is None
    assert 'text_encoder' not in TrainConfig().loader_options()

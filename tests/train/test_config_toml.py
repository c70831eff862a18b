import pytest

from dsgdn_pyg.train.config import ConfigError, read_toml, resolve_config


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
    from dsgdn_pyg.train.config import TrainConfig
    TrainConfig(**setting)  # fine for AMB-DSGDN
    with pytest.raises(ConfigError, match="AMB-DSGDN setting") as info:
        TrainConfig(model='sync-tva', **setting)
    assert info.value.field == next(iter(setting))

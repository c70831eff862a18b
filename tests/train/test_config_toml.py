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

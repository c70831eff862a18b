import pytest

from dsgdn_pyg.train import ConfigError, TrainConfig


def test_causal_setting_is_checked_and_reaches_the_model():
    with pytest.raises(ConfigError, match="'causal'") as info:
        TrainConfig(causal='yes')
    assert info.value.field == 'causal'
    with pytest.raises(ConfigError, match='Sync-TVA|sync-tva') as info:
        TrainConfig(model='sync-tva', causal=True)
    assert info.value.field == 'causal'
    assert TrainConfig().causal is False
    assert TrainConfig(causal=True).to_dict()['causal'] is True

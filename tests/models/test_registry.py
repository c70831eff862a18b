import json
import subprocess
import sys
import textwrap

import torch

from dsgdn_pyg.models import MODELS, AMBDSGDN, SyncTVA
from dsgdn_pyg.models.registry import MODEL_SETTINGS, build_model

# A model of its own file, registered with one line: its settings become run settings
# (option, help, check, refusal under another model) and it trains, saves and evaluates
# through the package's own commands. In a subprocess: the run settings are generated from
# the registry when they are first imported.
TOY = '''
from dataclasses import dataclass
from typing import ClassVar

import torch
from dsgdn_pyg.data.corpus import feature_key
from dsgdn_pyg.models import ModelOutput
from dsgdn_pyg.models.model_settings import ModelSettings
from dsgdn_pyg.settings import integer, setting


@dataclass
class ToySettings(ModelSettings):
    name: ClassVar[str] = 'toy'
    label: ClassVar[str] = 'Toy'
    model_path: ClassVar[str] = 'toy_model:Toy'
    toy_depth: int = setting(1, 'Toy: hidden layers.', check=integer(1))

    def model_kwargs(self):
        return dict(super().model_kwargs(), toy_depth=self.toy_depth)


class Toy(torch.nn.Module):
    def __init__(self, feature_dims, num_classes, num_speakers, hidden_channels, heads,
                 dropout, conv, toy_depth):
        super().__init__()
        self._config = dict(feature_dims=dict(feature_dims), num_classes=num_classes,
                            num_speakers=num_speakers, hidden_channels=hidden_channels,
                            heads=heads, dropout=dropout, conv=conv, toy_depth=toy_depth)
        self.modalities = list(feature_dims)
        layers, width = [], sum(feature_dims.values())
        for _ in range(toy_depth):
            layers += [torch.nn.Linear(width, hidden_channels), torch.nn.ReLU()]
            width = hidden_channels
        self.body = torch.nn.Sequential(*layers, torch.nn.Linear(width, num_classes))

    def config(self):
        return dict(self._config)

    def set_epoch(self, epoch):
        pass

    def forward(self, data):
        x = torch.cat([getattr(data, feature_key(m)) for m in self.modalities], dim=-1)
        out = self.body(x)
        return ModelOutput(out, {m: out for m in self.modalities},
                           torch.ones(out.size(0), dtype=torch.bool, device=out.device))
'''

SCRIPT = '''
import json, sys
sys.path.insert(0, sys.argv[1])
from dsgdn_pyg.models import registry
from toy_model import ToySettings
registry.MODEL_SETTINGS[ToySettings.name] = ToySettings  # the one registry line

import torch
from click.testing import CliRunner
from dsgdn_pyg.cli import main

small = ['--num-dialogues', '12', '--feature-dims', 't=16,a=8,v=8', '--hidden-channels', '8',
         '--window', '2', '--batch-size', '4', '--device', 'cpu', '--epochs', '1', '-q']
run = lambda *args: CliRunner().invoke(main, list(args))
report = {}
report['help'] = run('train', '--help').output
trained = run('train', '--model', 'toy', '--toy-depth', '3', *small, '--out', sys.argv[2])
report['train'] = [trained.exit_code, trained.output]
payload = torch.load(sys.argv[2] + '/best.pt', weights_only=True)
report['model_config'] = payload['model_config']
report['model_name'] = payload['model_name']
scored = run('evaluate', '--checkpoint', sys.argv[2] + '/best.pt', '--split', 'test')
report['evaluate'] = [scored.exit_code, scored.output]
refused = run('train', '--toy-depth', '3', *small, '--out', sys.argv[2] + '-amb')
report['refused'] = [refused.exit_code, refused.output]
print(json.dumps(report))
'''


def test_a_model_registered_with_one_line_trains_and_evaluates(tmp_path):
    (tmp_path / 'toy_model.py').write_text(textwrap.dedent(TOY))
    done = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path), str(tmp_path / 'run')],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert '--toy-depth' in report['help'] and 'Toy: hidden layers.' in report['help']
    assert report['train'][0] == 0, report['train'][1]
    assert report['model_name'] == 'toy'
    assert report['model_config']['toy_depth'] == 3
    assert report['model_config']['hidden_channels'] == 8
    assert report['evaluate'][0] == 0 and 'weighted F1' in report['evaluate'][1], \
        report['evaluate'][1]
    code, output = report['refused']
    assert code != 0 and 'is a Toy setting' in output and "'amb-dsgdn'" in output, output


def test_the_registry_names_the_model_classes():
    assert list(MODEL_SETTINGS) == ['amb-dsgdn', 'sync-tva']
    assert MODELS == {'amb-dsgdn': AMBDSGDN, 'sync-tva': SyncTVA}


def test_settings_build_the_model_the_trainer_built_before():
    # The kwargs the trainer passed before the settings moved into the models, written out.
    from dsgdn_pyg.train import TrainConfig
    config = TrainConfig(hidden_channels=16, window=3, context_window=2, q_base=0.1)
    built = config.model_settings().build({'t': 6, 'a': 4}, num_classes=3, num_speakers=2)
    expected = dict(feature_dims={'t': 6, 'a': 4}, num_classes=3, num_speakers=2,
                    hidden_channels=16, heads=2, dropout=config.dropout, conv='diffgat',
                    graph=True, modality_dropout=True, q_base=0.1, md_lambda=config.md_lambda,
                    p_exe=config.p_exe, warmup_epochs=config.warmup_epochs,
                    fusion_weights=None, context_window=2, checkpoint_activations=False,
                    causal=False)
    torch.manual_seed(0)
    by_settings = config.model_settings().build({'t': 6, 'a': 4}, 3, 2)
    torch.manual_seed(0)
    by_hand = build_model('amb-dsgdn', **expected)
    assert isinstance(built, AMBDSGDN) and by_settings.config() == by_hand.config()
    for (name, a), (_, b) in zip(by_settings.state_dict().items(), by_hand.state_dict().items()):
        assert torch.equal(a, b), name  # same initialisation: bit for bit the same model

    sync = TrainConfig(model='sync-tva', graph=False, cross_window=2, hidden_channels=8)
    model = sync.model_settings().build({'t': 6}, 3, 2)
    assert isinstance(model, SyncTVA)
    assert model.config()['num_layers'] == 0 and model.config()['cross_window'] == 2

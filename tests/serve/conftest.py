"""A tiny causal AMB-DSGDN on transcripts (TF-IDF text features), as the model folder of
`dsgdn-pyg train`: it both predicts whole dialogues and streams."""
import os
import sys

import pytest

pytest.importorskip('fastapi', reason='the server tests need the [serve] extra '
                                      '(pip install "dsgdn-pyg[serve]")')
pytest.importorskip('httpx', reason='FastAPI\'s TestClient needs httpx (the [serve] extra)')

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'cli'))

from test_stream import SMALL, invoke, write_transcripts  # noqa: E402

@pytest.fixture(scope='session')
def model_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('serve-model')
    write_transcripts(root / 'meld')
    result = invoke('train', '--dataset', f'meld-csv:{root / "meld"}', '--causal', *SMALL,
                    '--text-encoder', 'tfidf', '--out', root / 'run')
    assert result.exit_code == 0, result.output
    return str(root / 'run' / 'model')

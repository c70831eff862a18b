"""Videos alone as a corpus: a csv:DIR corpus whose utterances are windows (start/end columns)
of generated talking-head clips trains with --modalities t,a,v through the command line, then
predicts on a new clip (predict --input) and streams it (a 'video' field per line); the
features equal the extractor's own output standardised with the training split's statistics,
and the three ways to predict agree."""
import csv
import json
import os

import numpy as np
import pytest

pytest.importorskip('mediapipe', reason='the [video] extra (mediapipe) is not installed')
pytest.importorskip('av', reason='the [video] extra (PyAV) is not installed')
pytest.importorskip('skimage', reason='scikit-image (the test photograph) is not installed')
pytest.importorskip('opensmile', reason='the [audio] extra is not installed')

from click.testing import CliRunner  # noqa: E402

from dsgdn_pyg.cli import main  # noqa: E402

from csv_corpus import write_csv, write_csv_corpus  # noqa: E402
from media import talking_clip  # noqa: E402

pytestmark = pytest.mark.usefixtures('one_thread')
COLUMNS = ['Utterance', 'Speaker', 'Emotion', 'Dialogue_ID', 'Utterance_ID', 'Clip', 'Start',
           'End']
WORDS = ['oh', 'no', 'yes', 'great', 'what', 'fine']


def write_corpus(directory, sizes=(6, 2)):
    """One generated clip per dialogue (1.5 s); utterance u is its window [0.5u, 0.5u+0.5)."""
    os.makedirs(os.path.join(directory, 'clips'))

    def dialogue_rows(split, d, first, rng):
        name = f'clips/{split}-{d}.mkv'
        talking_clip(os.path.join(directory, name), seconds=1.5, fps=10,
                     seed=d + 100 * (split == 'test'), f0=float(rng.uniform(120, 300)))
        return [{'Utterance': ' '.join(rng.choice(WORDS, 3)),
                 'Speaker': 'AB'[u % 2], 'Emotion': str(rng.choice(['calm', 'upset'])),
                 'Dialogue_ID': str(d), 'Utterance_ID': str(u), 'Clip': name,
                 'Start': f'{0.5 * u:g}', 'End': f'{0.5 * u + 0.5:g}'} for u in range(3)]

    write_csv_corpus(directory, sizes, COLUMNS, dialogue_rows)


@pytest.fixture(scope='module', autouse=True)
def media_cache(tmp_path_factory):
    # Clip features are cached under $DSGDN_PYG_CACHE: a temporary one for these tests.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('DSGDN_PYG_CACHE', str(tmp_path_factory.mktemp('media-cache')))
        yield


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('video-corpus')
    write_corpus(root / 'corpus')
    (root / 'run.toml').write_text(
        '[csv]\nfiles = { train = "train.csv", valid = "", test = "test.csv" }\n'
        'video = "Clip"\nvideo_start = "Start"\nvideo_end = "End"\n\n'
        f'[data_options]\nsvd_dim = 4\nmin_df = 1\nroot = "{root / "cache"}"\n')
    result = invoke('train', '--dataset', f'csv:{root / "corpus"}', '--config',
                    root / 'run.toml', '--modalities', 't,a,v', '--causal', '--hidden-channels',
                    8, '--window', 2, '--batch-size', 4, '--epochs', 2, '--device', 'cpu',
                    '--quiet', '--out', root / 'run')
    assert result.exit_code == 0, result.output
    return root, root / 'run' / 'best.pt'


def test_checkpoint_records_the_extractor_and_training_scaling(trained):
    from dsgdn_pyg.datasets import load_corpus
    from dsgdn_pyg.train import load_checkpoint
    from dsgdn_pyg.video import Clip, VideoOptions, extractor_identity, video_features

    root, checkpoint = trained
    payload = load_checkpoint(checkpoint)
    assert payload['modalities'] == ['t', 'a', 'v']
    state = payload['video_features']
    identity = extractor_identity(VideoOptions())
    assert {k: state[k] for k in identity} == identity
    assert payload['audio_features']['feature_set'] == 'eGeMAPS'

    # x_v of a test dialogue = the extractor's output on its windows, scaled by the mean and
    # std of the training dialogues' windows (the valid ones held out of train.csv excluded).
    mapping = payload['data_options']['csv']
    corpus = load_corpus(f'csv:{root / "corpus"}', csv=mapping, svd_dim=4, min_df=1,
                         root=str(root / 'cache'), log=False)
    windows = {}
    for split in ('train', 'test'):
        with open(root / 'corpus' / f'{split}.csv') as f:
            for r in csv.DictReader(f):
                windows.setdefault((split, r['Dialogue_ID']), []).append(
                    Clip(os.fspath(root / 'corpus' / r['Clip']), float(r['Start']),
                         float(r['End'])))
    train = np.concatenate([video_features(windows['train', d.dialogue_id], cache_root='')
                            for d in corpus.train]).astype(np.float64)
    std = train.std(0)
    mean, std = train.mean(0), np.where(std > 1e-8, std, 1.0)
    test = corpus.test[0]
    raw = video_features(windows['test', test.dialogue_id], cache_root='')
    # float32 features and statistics vs float64 here: agreement to float32 rounding of
    # values scaled by small stds.
    np.testing.assert_allclose(test.x_v.numpy(), (raw - mean) / std, rtol=1e-3, atol=1e-3)


def test_predict_and_stream_on_a_new_clip(trained, tmp_path):
    import dsgdn_pyg
    from dsgdn_pyg.train import load_checkpoint

    root, checkpoint = trained
    clip = talking_clip(tmp_path / 'new.mkv', seconds=1.0, fps=10, seed=7, f0=180.0)
    rows = [{'Utterance': 'oh no', 'Speaker': 'A', 'Clip': 'new.mkv', 'Start': '0',
             'End': '0.5'},
            {'Utterance': 'yes great', 'Speaker': 'B', 'Clip': 'new.mkv', 'Start': '0.5',
             'End': ''}]
    talk = write_csv(tmp_path / 'talk.csv', rows)
    result = invoke('predict', '--checkpoint', checkpoint, '--input', talk, '--output',
                    tmp_path / 'p.csv', '--device', 'cpu')
    assert result.exit_code == 0, result.output
    with open(tmp_path / 'p.csv') as f:
        predicted = list(csv.DictReader(f))
    payload = load_checkpoint(checkpoint)
    names = payload['label_names']
    probabilities = np.array([[float(r[f'prob_{n}']) for n in names] for r in predicted])

    # The Python API with clips as records gives the same.
    records = [{'text': r['Utterance'], 'speaker': r['Speaker'],
                'video': {'path': clip, 'start': r['Start'] or None, 'end': r['End'] or None}}
               for r in rows]
    result, = dsgdn_pyg.predict_dialogues(payload, [records], device='cpu')
    np.testing.assert_allclose(result.probabilities, probabilities, atol=1e-5)

    # The stream, one 'video' field per line: the causal model's full pass, utterance by
    # utterance (to float rounding).
    lines = [json.dumps({'dialogue': 'x', 'speaker': r['speaker'], 'text': r['text'],
                         'video': r['video']}) for r in records]
    lines.append(json.dumps({'dialogue': 'x', 'speaker': 'A', 'text': 'hm',
                             'video': os.fspath(tmp_path / 'gone.mkv')}))
    result = invoke('stream', '--checkpoint', checkpoint, input='\n'.join(lines) + '\n')
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.output.splitlines()]
    streamed = np.array([[a['probabilities'][n] for n in names] for a in answers[:2]])
    np.testing.assert_allclose(streamed, probabilities, atol=1e-5)
    assert answers[2]['field'] == 'video'
    assert "line 3: field 'video': video file" in answers[2]['error']
    assert 'gone.mkv' in answers[2]['error'] and 'does not exist' in answers[2]['error']


def test_a_bad_clip_names_the_file_and_line(trained, tmp_path):
    _, checkpoint = trained
    (tmp_path / 'broken.mkv').write_bytes(b'not a video at all' * 50)
    with open(tmp_path / 'talk.csv', 'w', newline='') as f:
        f.write('Utterance,Speaker,Clip,Start,End\nhello,A,broken.mkv,0,1\n')
    result = invoke('predict', '--checkpoint', checkpoint, '--input', tmp_path / 'talk.csv',
                    '--output', tmp_path / 'p.csv', '--device', 'cpu')
    assert result.exit_code == 1
    assert 'talk.csv: line 2: cannot read the audio of video file' in result.output or \
        'talk.csv: line 2: cannot read video file' in result.output
    assert 'broken.mkv' in result.output
    assert not (tmp_path / 'p.csv').exists()


def test_another_extractor_version_is_refused_at_predict_time(trained):
    import dsgdn_pyg
    from dsgdn_pyg.train import load_checkpoint

    _, checkpoint = trained
    payload = load_checkpoint(checkpoint)
    payload['video_features'] = dict(payload['video_features'], version='0.9.1')
    records = [{'text': 'hi', 'speaker': 'A', 'video': 'never-read.mkv'}]
    with pytest.raises(ValueError, match=r"trained on video features of mediapipe version "
                                         r"0\.9\.1, but this installation has 0\.10\.14"):
        dsgdn_pyg.predict_dialogues(payload, [records], device='cpu')

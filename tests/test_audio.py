"""Recordings as the audio modality: features equal to openSMILE's own `process_file` on WAV
files generated here with Python's `wave` module; training on and predicting from a CSV
corpus with an audio column."""
import csv
import os
import sys
import wave

import numpy as np
import pytest

import dsgdn_pyg
from dsgdn_pyg.audio import AUDIO_FEATURE_SETS, audio_features, dialogue_audio

from csv_corpus import write_csv_corpus

opensmile = pytest.importorskip('opensmile', reason='the [audio] extra (opensmile) is not '
                                                    'installed')
pytestmark = pytest.mark.usefixtures('one_thread')


def write_wav(path, seed, seconds=0.3, rate=16000):
    """A gliding tone with noise, 16-bit mono PCM."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(110, 320)
    x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t)) + 0.02 * rng.standard_normal(t.size)
    with wave.open(os.fspath(path), 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype('<i2').tobytes())
    return os.fspath(path)


def smile_reference(path, feature_set):
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                            feature_level=opensmile.FeatureLevel.Functionals)
    return smile.process_file(path).to_numpy(dtype=np.float32)[0]


@pytest.mark.parametrize('name', list(AUDIO_FEATURE_SETS))
def test_features_equal_opensmile_process_file(tmp_path, name):
    paths = [write_wav(tmp_path / f'{k}.wav', k) for k in range(2)]
    ours = audio_features(paths, ['a', 'b'], name)
    expected = np.stack([smile_reference(p, AUDIO_FEATURE_SETS[name]) for p in paths])
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)
    width = {'eGeMAPS': 88, 'emobase': 988, 'ComParE_2016': 6373}[name]
    assert ours.shape == (2, width)


def test_missing_or_unreadable_file_names_file_and_line(tmp_path):
    transcript = os.fspath(tmp_path / 'talk.csv')
    write_wav(tmp_path / 'ok.wav', 0)
    (tmp_path / 'bad.wav').write_bytes(b'RIFF nonsense')
    rows = [{'audio': 'ok.wav', 'line': 2}, {'audio': 'gone.wav', 'line': 3}]
    with pytest.raises(FileNotFoundError, match=r"talk\.csv: dialogue 'd', line 3: audio "
                                                r"file '.*gone\.wav' does not exist"):
        dialogue_audio(transcript, 'd', rows)
    rows[1]['audio'] = 'bad.wav'
    with pytest.raises(ValueError, match=r"talk\.csv: dialogue 'd', line 3: cannot read "
                                         r"audio file '.*bad\.wav'"):
        dialogue_audio(transcript, 'd', rows)


@pytest.mark.parametrize('seconds', [0.0, 0.001])
def test_an_empty_or_too_short_recording_names_file_and_line(tmp_path, seconds):
    import warnings
    transcript = os.fspath(tmp_path / 'talk.csv')
    write_wav(tmp_path / 'ok.wav', 0)
    write_wav(tmp_path / 'empty.wav', 1, seconds=seconds)  # a header, no (or 16) samples
    rows = [{'audio': 'ok.wav', 'line': 2}, {'audio': 'empty.wav', 'line': 3}]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # and openSMILE's "Segment too short" is not shown
        with pytest.raises(ValueError, match=r"talk\.csv: dialogue 'd', line 3: audio file "
                                             r"'.*empty\.wav' is empty or too short"):
            dialogue_audio(transcript, 'd', rows)


def test_without_opensmile_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'opensmile', None)
    with pytest.raises(ImportError, match=r'pip install dsgdn-pyg\[audio\]'):
        audio_features([write_wav(tmp_path / 'a.wav', 0)], ['a'])


COLUMNS = ['Utterance', 'Speaker', 'Emotion', 'Dialogue_ID', 'Utterance_ID', 'Recording']


def write_corpus(directory, sizes=(8, 3)):
    """train.csv and test.csv whose utterances each have a generated recording."""
    os.makedirs(os.path.join(directory, 'wav'))

    def dialogue_rows(split, d, first, rng):
        rows = []
        for u in range(int(rng.integers(2, 4))):
            name = f'wav/{split}-{d}-{u}.wav'
            write_wav(os.path.join(directory, name),
                      first + len(rows) + 1000 * (split == 'test'))
            rows.append({'Utterance': ' '.join(rng.choice(['oh', 'no', 'yes', 'great'], 3)),
                         'Speaker': str(rng.choice(['A', 'B'])),
                         'Emotion': str(rng.choice(['calm', 'upset'])),
                         'Dialogue_ID': str(d), 'Utterance_ID': str(u), 'Recording': name})
        return rows

    write_csv_corpus(directory, sizes, COLUMNS, dialogue_rows)


def test_train_and_predict_with_recordings(tmp_path):
    from click.testing import CliRunner

    from dsgdn_pyg.cli import main
    from dsgdn_pyg.datasets import load_corpus
    from dsgdn_pyg.datasets.transcript import read_transcripts
    from dsgdn_pyg.inference.evaluate import predict
    from dsgdn_pyg.train import load_checkpoint
    from tiny_checkpoint import train_tiny

    corpus_dir = tmp_path / 'corpus'
    write_corpus(corpus_dir)
    mapping = {'files': {'train': 'train.csv', 'valid': '', 'test': 'test.csv'},
               'audio': 'Recording', 'audio_features': 'emobase'}
    checkpoint = train_tiny(tmp_path, f'csv:{corpus_dir}', csv=mapping, svd_dim=4, min_df=1)
    payload = load_checkpoint(checkpoint)
    assert payload['modalities'] == ['t', 'a']

    # The corpus's audio features: openSMILE's, standardised with the training split's
    # statistics (computed here from the reference features; the validation dialogues held
    # out of train.csv are not part of them).
    corpus = load_corpus(f'csv:{corpus_dir}', csv=mapping, svd_dim=4, min_df=1,
                         root=str(tmp_path / 'cache'), log=False)
    train_ids = {d.dialogue_id for d in corpus.train}
    with open(corpus_dir / 'train.csv') as f:
        train_rows = [r for r in csv.DictReader(f) if r['Dialogue_ID'] in train_ids]
    assert 0 < len(train_ids) < 8
    raw = np.stack([smile_reference(os.fspath(corpus_dir / r['Recording']), 'emobase')
                    for r in train_rows]).astype(np.float64)
    std = raw.std(0)
    mean, std = raw.mean(0), np.where(std > 1e-8, std, 1.0)
    with open(corpus_dir / 'test.csv') as f:
        test_rows = list(csv.DictReader(f))
    first = [r for r in test_rows if r['Dialogue_ID'] == corpus.test[0].dialogue_id]
    first.sort(key=lambda r: int(r['Utterance_ID']))
    expected = np.stack([smile_reference(os.fspath(corpus_dir / r['Recording']), 'emobase')
                         for r in first])
    np.testing.assert_allclose(corpus.test[0].x_a.numpy(), (expected - mean) / std,
                               rtol=1e-4, atol=1e-4)

    # Predicting from the transcript (recordings found relative to it) = the dataset path.
    test_csv = os.fspath(corpus_dir / 'test.csv')
    results = dsgdn_pyg.predict_dialogues(
        payload, read_transcripts([test_csv], {'text': 'Utterance', 'speaker': 'Speaker',
                                               'label': 'Emotion', 'order': 'Utterance_ID',
                                               'dialogue': ['Dialogue_ID'],
                                               'audio': 'Recording'}, need_audio=True),
        device='cpu')
    reference = predict(checkpoint, split='test', device='cpu')
    np.testing.assert_allclose(np.concatenate([r.probabilities for r in results]),
                               [[r[f'prob_{n}'] for n in payload['label_names']]
                                for r in reference], atol=1e-5)

    # The command line finds the audio column through the checkpoint's mapping; a missing
    # recording names the file and the line.
    runner = CliRunner()
    args = ['predict', '--checkpoint', checkpoint, '--input', test_csv, '--output',
            str(tmp_path / 'p.csv'), '--device', 'cpu']
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    os.remove(corpus_dir / first[1]['Recording'])
    result = runner.invoke(main, args)
    line = test_rows.index(first[1]) + 2
    assert result.exit_code == 1
    assert f"line {line}: audio file " in result.output
    assert first[1]['Recording'].split('/')[1] in result.output


def test_mapping_checks_the_audio_keys():
    from dsgdn_pyg.datasets.dialogue_csv import resolve_mapping

    assert resolve_mapping({'audio': 'Recording'})['audio'] == 'Recording'
    with pytest.raises(ValueError, match="unknown audio feature set 'GeMAPS'"):
        resolve_mapping({'audio': 'Recording', 'audio_features': 'GeMAPS'})
    with pytest.raises(ValueError, match="'audio' must be a column name"):
        resolve_mapping({'audio': 3})

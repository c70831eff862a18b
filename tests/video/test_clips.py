"""Clips as vectors: the audio track through openSMILE equals openSMILE's own process_file on
the WAV of the same samples; the content-hash cache; bad files are clear errors."""
import os
import shutil
import wave

import numpy as np
import pytest

pytest.importorskip('mediapipe', reason='the [video] extra (mediapipe) is not installed')
pytest.importorskip('av', reason='the [video] extra (PyAV) is not installed')
pytest.importorskip('skimage', reason='scikit-image (the test photograph) is not installed')
opensmile = pytest.importorskip('opensmile', reason='the [audio] extra is not installed')

from dsgdn_pyg.video import (Clip, VideoOptions, make_clip, video_audio_features,  # noqa: E402
                             video_features)

from media import RATE, talking_clip, tone  # noqa: E402


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    return talking_clip(tmp_path_factory.mktemp('clips') / 'talk.mkv', seconds=1.0, fps=10)


def write_wav(path, samples):
    with wave.open(os.fspath(path), 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype('<i2').tobytes())
    return os.fspath(path)


def test_audio_track_equals_opensmile_on_the_same_samples(clip, tmp_path):
    samples = tone(1.0)  # what talking_clip wrote, as 16-bit PCM (lossless)
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.Functionals)
    whole = smile.process_file(write_wav(tmp_path / 'a.wav', samples)).to_numpy()[0]
    part = smile.process_file(write_wav(tmp_path / 'b.wav',
                                        samples[int(0.2 * RATE):int(0.8 * RATE)])).to_numpy()[0]
    ours = video_audio_features([Clip(clip), Clip(clip, 0.2, 0.8)], 'eGeMAPS', cache_root='')
    # The same samples through the same openSMILE; float32 output of both.
    np.testing.assert_allclose(ours, np.stack([whole, part]), rtol=1e-5, atol=1e-5)


def test_cache_is_keyed_by_content_and_options(clip, tmp_path):
    root = os.fspath(tmp_path / 'cache')
    first = video_features([Clip(clip)], cache_root=root)
    stored = os.listdir(os.path.join(root, 'video'))
    assert len(stored) == 1
    np.testing.assert_array_equal(video_features([Clip(clip)], cache_root=root), first)
    np.testing.assert_array_equal(video_features([Clip(clip)], cache_root=''), first)
    video_features([Clip(clip)], VideoOptions(fps=2.0), cache_root=root)
    video_features([Clip(clip, 0.0, 0.5)], cache_root=root)
    assert len(os.listdir(os.path.join(root, 'video'))) == 3
    other = shutil.copy(clip, tmp_path / 'copy.mkv')  # the same bytes under another name
    video_features([Clip(other)], cache_root=root)
    assert len(os.listdir(os.path.join(root, 'video'))) == 3


def test_a_clip_pools_only_its_window(clip):
    whole, window = video_features([Clip(clip), Clip(clip, 0.0, 0.35)], cache_root='')
    assert window[-2:].tolist() == [1.0, 0.0]
    assert not np.allclose(whole, window)  # the face moves: another mean


def test_bad_files_are_errors_naming_file_and_line(tmp_path):
    bad = tmp_path / 'broken.mp4'
    bad.write_bytes(b'\x00\x00\x00\x18ftypmp42' + os.urandom(2000))
    place = "talk.csv: dialogue 'd', line 3"
    with pytest.raises(ValueError, match=r"talk\.csv: dialogue 'd', line 3: cannot read video "
                                         r"file '.*broken\.mp4'"):
        video_features([make_clip(os.fspath(tmp_path / 'talk.csv'), 'broken.mp4', '', '',
                                  place)], cache_root='')
    with pytest.raises(FileNotFoundError, match=r"line 3: video file '.*gone\.mp4' does not "
                                                r"exist"):
        video_features([make_clip(os.fspath(tmp_path / 'talk.csv'), 'gone.mp4', '', '',
                                  place)], cache_root='')
    with pytest.raises(ValueError, match=r"line 3: field 'video_start': 'soon' is not a "
                                         r"number"):
        make_clip('talk.csv', 'a.mp4', 'soon', '', place)
    with pytest.raises(ValueError, match=r"line 3: field 'video' is empty"):
        make_clip('talk.csv', ' ', '', '', place)


def test_a_video_without_sound_is_a_clear_error_for_audio(tmp_path):
    from media import astronaut_frames, write_video

    path = write_video(tmp_path / 'mute.mkv', astronaut_frames(4), fps=10)
    with pytest.raises(ValueError, match=r"here: video file '.*mute\.mkv' has no audio track"):
        video_audio_features([Clip(path, where='here')], cache_root='')
    assert video_features([Clip(path)], cache_root='')[0, -2] == 1.0  # the visual part works

"""The [csv] mapping's video keys, the training split's scaling of clip features and the
checks a stored extractor state gets."""
import numpy as np
import pytest

pytest.importorskip('mediapipe', reason='the [video] extra (mediapipe) is not installed')

from dsgdn_pyg.video import (VideoOptions, check_extractor, check_video_mapping,  # noqa: E402
                             fit_video_standardizer, standardize_video, video_options)


def test_mapping_keys_are_checked():
    check_video_mapping({'video': 'Clip', 'video_start': 'Start', 'video_fps': 2,
                         'video_face': 'left'})
    assert video_options({'video': 'Clip', 'video_fps': 2, 'video_face': 'left'}) == \
        VideoOptions(fps=2, face='left')
    with pytest.raises(ValueError, match="'video' must be a column name"):
        check_video_mapping({'video': 3})
    with pytest.raises(ValueError, match=r"sets \['video_start'\] but no 'video' column"):
        check_video_mapping({'video_start': 'Start'})
    with pytest.raises(ValueError, match='face choice must be one of largest'):
        check_video_mapping({'video': 'Clip', 'video_face': 'speaker'})
    with pytest.raises(ValueError, match="'video_audio' must be true or false"):
        check_video_mapping({'video': 'Clip', 'video_audio': 'yes'})


def test_scaling_is_the_training_split_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(20, 5)).astype(np.float32)
    train[:, 4] = 1.0  # a constant column is only centred
    state = fit_video_standardizer(train, VideoOptions())
    scaled = standardize_video(train, state)
    # float32 features, float64 statistics: agreement to float32 rounding.
    np.testing.assert_allclose(scaled[:, :4], (train[:, :4] - train[:, :4].mean(0))
                               / train[:, :4].std(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(scaled[:, 4], 0.0)
    with pytest.raises(ValueError, match='video features .* have 4 values per utterance but '
                                         'the stored scaling expects 5'):
        standardize_video(train[:, :4], state)


def test_another_extractor_version_is_refused():
    state = fit_video_standardizer(np.zeros((2, 3)), VideoOptions(fps=2.0))
    assert check_extractor(state) == VideoOptions(fps=2.0)
    state['version'] = '0.9.0'
    with pytest.raises(ValueError, match=r"talk\.pt was trained on video features of "
                                         r"mediapipe version 0\.9\.0, but this installation "
                                         r"has 0\.10\.14; install that version"):
        check_extractor(state, 'talk.pt')
    state = fit_video_standardizer(np.zeros((2, 3)), VideoOptions())
    state['feature_version'] = 0
    with pytest.raises(ValueError, match='video features version 0'):
        check_extractor(state, 'talk.pt')
    with pytest.raises(ValueError, match='unknown video feature state'):
        check_extractor({'format': 'x'}, 'talk.pt')

"""Frames, faces and per-frame features on real pixels (the astronaut photograph of
scikit-image, moved and scaled across a generated video): equal to PyAV's and MediaPipe's own
output, computed here by independent calls."""
import warnings

import numpy as np
import pytest

pytest.importorskip('mediapipe', reason='the [video] extra (mediapipe) is not installed')
av = pytest.importorskip('av', reason='the [video] extra (PyAV) is not installed')
pytest.importorskip('skimage', reason='scikit-image (the test photograph) is not installed')

from dsgdn_pyg.video import (GEOMETRY, FaceExtractor, VideoOptions, choose_face,  # noqa: E402
                             decode_frames, frame_vector, geometry, pool, square_crop)

from media import blank_frames, talking_clip, two_faces_frame, write_video  # noqa: E402


def reference_frames(path, every):
    """Every `every`-th frame, decoded here with PyAV directly."""
    with av.open(path) as container:
        return [(f.time, f.to_ndarray(format='rgb24'))
                for k, f in enumerate(container.decode(video=0)) if k % every == 0]


def mediapipe_reference(frame, model_selection=1):
    """MediaPipe's own detector and Face Mesh, fresh instances: the largest face's box and
    score, and the 468 points of the face in the crop around it (in crop pixels)."""
    import mediapipe as mp

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with mp.solutions.face_detection.FaceDetection(
                model_selection=model_selection, min_detection_confidence=0.5) as detector:
            detections = detector.process(frame).detections
        if not detections:
            return None
        h, w = frame.shape[:2]
        best = max(detections, key=lambda d: d.location_data.relative_bounding_box.width *
                   d.location_data.relative_bounding_box.height)
        b = best.location_data.relative_bounding_box
        box = np.array([b.xmin * w, b.ymin * h, b.width * w, b.height * h])
        crop, _ = square_crop(frame, box)
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
            faces = mesh.process(crop).multi_face_landmarks
    if not faces:
        return None
    side = crop.shape[0]
    points = np.array([[p.x * side, p.y * side, p.z * side] for p in faces[0].landmark])
    return box, float(best.score[0]), points


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    return talking_clip(tmp_path_factory.mktemp('video') / 'talk.mkv', seconds=1.0, fps=10)


@pytest.fixture(scope='module')
def extractor():
    e = FaceExtractor(VideoOptions())
    yield e
    e.close()


def test_decoding_samples_the_frames_pyav_decodes(clip):
    ours = list(decode_frames(clip, fps=5.0))
    expected = reference_frames(clip, every=2)  # 10 fps sampled at 5 fps
    assert [t for t, _ in ours] == pytest.approx([t for t, _ in expected])
    for (_, a), (_, b) in zip(ours, expected):
        np.testing.assert_array_equal(a, b)  # the same FFmpeg decoding of the same file
    window = [t for t, _ in decode_frames(clip, fps=5.0, start=0.3, end=0.75)]
    assert window == pytest.approx([0.3, 0.5, 0.7])


def test_per_frame_features_equal_mediapipe_own_output(clip, extractor):
    frames = [f for _, f in decode_frames(clip, fps=5.0)]
    checked = 0
    for frame in frames:
        reference = mediapipe_reference(frame)
        ours = extractor.frame_features(frame)
        assert (reference is None) == (ours is None)
        if reference is None:
            continue
        box, score, points = reference
        # Same models on the same pixels: equal up to float32 rounding in the graphs.
        np.testing.assert_allclose(ours, frame_vector(points, box, score, frame.shape),
                                   rtol=1e-5, atol=1e-5)
        # Independent of our geometry code: mouth opening and eye opening over the
        # inter-ocular distance, straight from MediaPipe's points (rotation-free distances).
        ocular = np.linalg.norm(points[33, :2] - points[263, :2])
        mouth = np.linalg.norm(points[13, :2] - points[14, :2]) / ocular
        eye = np.linalg.norm(points[159, :2] - points[145, :2]) / ocular
        assert ours[GEOMETRY.index('mouth_open')] == pytest.approx(mouth, rel=1e-6)
        assert ours[GEOMETRY.index('eye_open_left')] == pytest.approx(eye, rel=1e-6)
        h, w = frame.shape[:2]
        assert ours[GEOMETRY.index('face_size')] == pytest.approx(
            np.sqrt(box[2] * box[3] / (w * h)))
        assert ours[GEOMETRY.index('score')] == pytest.approx(score)
        checked += 1
    assert checked >= 4, 'the astronaut should be found in most frames'


def test_geometry_does_not_depend_on_position_scale_or_roll():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(468, 3)) * 10 + 100
    points[33, :2], points[263, :2] = [80, 100], [120, 100]
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = points.copy()
    moved[:, :2] = points[:, :2] @ rotation.T * 2.5 + [40, -7]
    moved[:, 2] = points[:, 2] * 2.5
    a, b = geometry(points), geometry(moved)
    roll = GEOMETRY.index('roll')
    # Float rounding only: the same points, rotated, scaled and moved.
    np.testing.assert_allclose(np.delete(a, roll), np.delete(b, roll), rtol=1e-9, atol=1e-9)
    assert b[roll] - a[roll] == pytest.approx(angle)


def test_blank_wall_gives_the_no_face_indicator(tmp_path, extractor):
    from dsgdn_pyg.video import Clip, video_features

    path = write_video(tmp_path / 'wall.mkv', blank_frames(6), fps=10)
    assert all(extractor.frame_features(f) is None for _, f in decode_frames(path))
    options = VideoOptions()
    features, = video_features([Clip(path)], options, cache_root='')
    assert features.shape == (options.width,)
    assert features[-2:].tolist() == [0.0, 1.0]  # share of frames with a face, no face
    assert not features[:-2].any()


def test_pooling_by_hand_on_three_frames():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([3.0, 2.0, 0.0])
    pooled = pool([a, None, b], 3)
    np.testing.assert_allclose(pooled, [2, 2, 2, 1, 0, 2, 2 / 3, 0], rtol=1e-6)
    assert pooled.dtype == np.float32


def test_face_choice_picks_by_size_and_side():
    faces = [(np.array([10., 10, 40, 40]), 0.9), (np.array([200., 20, 80, 80]), 0.8),
             (np.array([120., 20, 30, 30]), 0.95)]
    assert choose_face(faces, 'largest', 320)[1] == 0.8
    assert choose_face(faces, 'left', 320)[1] == 0.9
    assert choose_face(faces, 'right', 320)[1] == 0.8
    assert choose_face(faces, 'center', 320)[1] == 0.95


def test_two_faces_on_real_pixels(extractor):
    frame = two_faces_frame()
    faces = extractor.faces(frame)
    assert len(faces) == 2
    assert choose_face(faces, 'largest', frame.shape[1])[0][0] > 240  # the right, larger
    assert choose_face(faces, 'left', frame.shape[1])[0][0] < 240


def test_options_are_checked():
    with pytest.raises(ValueError, match='face choice must be one of largest, left'):
        VideoOptions(face='speaker')
    with pytest.raises(ValueError, match='fps must be a number'):
        VideoOptions(fps=0)

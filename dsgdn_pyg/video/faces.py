r"""Frames, faces, landmarks and their per-frame features (see :mod:`dsgdn_pyg.video`)."""
import contextlib
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

EXTRACTOR = 'mediapipe-face-mesh'
#: Bump when the per-frame features or their pooling change (keys the cache and checkpoints).
FEATURE_VERSION = 1
FACE_CHOICES = ('largest', 'left', 'right', 'center')
DETECTORS = {'short': 0, 'full': 1}  # -> MediaPipe's model_selection
VIDEO_FORMAT = 'dsgdn-pyg-video-features'
AUDIO_RATE = 16000
NUM_LANDMARKS = 468

#: The per-frame geometry features, in order (all scale-free; angles in radians).
GEOMETRY = ('eye_open_left', 'eye_open_right', 'brow_raise_left', 'brow_raise_right',
            'brow_gap', 'mouth_open', 'mouth_width', 'smile', 'mouth_tilt', 'lip_nose',
            'jaw_drop', 'roll', 'yaw', 'pitch', 'face_size', 'face_x', 'face_y', 'score')

# Face Mesh indices (MediaPipe's canonical face model).
_EYE_OUTER = (33, 263)        # left/right outer eye corner (the subject's right/left)
_EYE_INNER = (133, 362)
_LID = ((159, 145), (386, 374))  # upper, lower lid of each eye
_BROW = (105, 334)
_BROW_INNER = (55, 285)
_LIP = (13, 14)               # inner upper, lower lip
_CORNER = (61, 291)
_NOSE_TIP, _SUBNASAL, _CHIN = 1, 2, 152
_CHEEK = (234, 454)


@dataclass(frozen=True)
class VideoOptions:
    r"""How a clip becomes a vector.

    Args:
        fps (float): Frames sampled per second of video. (default: :obj:`5.0`)
        face (str): Which face is the speaker's: ``'largest'``, ``'left'``, ``'right'`` or
            ``'center'``. (default: ``'largest'``)
        landmarks (bool): Add the 468 aligned landmark points to the geometry.
            (default: :obj:`True`)
        max_side (int): Frames are scaled down to at most this many pixels on their longer
            side before face finding. (default: :obj:`640`)
        min_confidence (float): Face detector threshold. (default: :obj:`0.5`)
        detector (str): ``'full'``: BlazeFace's full-range model, which finds faces down to
            ~5% of the frame's width (TV shots, a room); ``'short'``: the short-range one
            (faster, for faces filling much of a webcam frame). (default: ``'full'``)
    """
    fps: float = 5.0
    face: str = 'largest'
    landmarks: bool = True
    max_side: int = 640
    min_confidence: float = 0.5
    detector: str = 'full'

    def __post_init__(self):
        if not (isinstance(self.fps, (int, float)) and 0 < self.fps <= 60):
            raise ValueError(f"video fps must be a number in (0, 60], got {self.fps!r}")
        if self.face not in FACE_CHOICES:
            raise ValueError(f"video face choice must be one of {', '.join(FACE_CHOICES)}, "
                             f"got {self.face!r}")
        if self.detector not in DETECTORS:
            raise ValueError(f"video detector must be one of {', '.join(DETECTORS)}, got "
                             f"{self.detector!r}")
        if not (isinstance(self.max_side, int) and self.max_side >= 64):
            raise ValueError(f"video max_side must be an integer >= 64, got "
                             f"{self.max_side!r}")

    @property
    def frame_width(self) -> int:
        return len(GEOMETRY) + (2 * NUM_LANDMARKS if self.landmarks else 0)

    @property
    def width(self) -> int:
        r"""Values per pooled clip: mean and std per frame value, face share, no-face flag."""
        return 2 * self.frame_width + 2


@contextlib.contextmanager
def _quiet_native():
    # MediaPipe's C++ graphs (TFLite, absl) print notes on the process's stderr when they
    # start and on their first inference ("Created TensorFlow Lite XNNPACK delegate",
    # "Feedback manager requires ..."): not for our users. Python warnings are silenced too.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null, warnings.catch_warnings():
            warnings.simplefilter('ignore')
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _mediapipe():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # protobuf deprecation notes inside mediapipe
            import mediapipe
    except ImportError:
        raise ImportError("video features need mediapipe and PyAV, which are not installed: "
                          "pip install dsgdn-pyg[video]") from None
    return mediapipe


def _av():
    try:
        import av
    except ImportError:
        raise ImportError("video features need PyAV and mediapipe, which are not installed: "
                          "pip install dsgdn-pyg[video]") from None
    return av


def extractor_identity(options: VideoOptions) -> Dict[str, Any]:
    r"""What a checkpoint records of the extractor: name, versions and options."""
    return {'extractor': EXTRACTOR, 'version': _mediapipe().__version__,
            'feature_version': FEATURE_VERSION, 'options': asdict(options)}


# --------------------------------------------------------------------------------------------
# Decoding

def decode_frames(path: str, fps: float = 5.0, start: Optional[float] = None,
                  end: Optional[float] = None, max_side: int = 640
                  ) -> Iterator[Tuple[float, np.ndarray]]:
    r"""The frames of :obj:`path` sampled at :obj:`fps` within ``[start, end)`` seconds, as
    ``(time, RGB uint8 [H, W, 3])``, the longer side scaled to at most :obj:`max_side`.

    A frame is kept when its presentation time reaches the next sampling instant
    (``start + k / fps``), so the choice depends only on the timestamps."""
    av = _av()
    start = float(start or 0.0)
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = 'AUTO'
        if start > 0:
            container.seek(int(start * av.time_base), backward=True, any_frame=False)
        next_time = start
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else 0.0
            if t < start - 1e-6:
                continue
            if end is not None and t >= end:
                break
            if t + 1e-6 < next_time:
                continue
            while next_time <= t + 1e-6:
                next_time += 1.0 / fps
            scale = min(1.0, max_side / max(frame.width, frame.height))
            width, height = (max(2, int(round(frame.width * scale))),
                             max(2, int(round(frame.height * scale))))
            yield t, frame.to_ndarray(format='rgb24', width=width, height=height)


def decode_audio(path: str, start: Optional[float] = None, end: Optional[float] = None
                 ) -> Optional[np.ndarray]:
    r"""The audio track of :obj:`path` within ``[start, end)`` seconds as 16 kHz mono float32
    in [-1, 1) (16-bit samples / 32768, as a WAV file is read), or :obj:`None` without
    one."""
    av = _av()
    with av.open(path) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format='s16', layout='mono', rate=AUDIO_RATE)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    first = int(round(float(start or 0.0) * AUDIO_RATE))
    last = int(round(end * AUDIO_RATE)) if end is not None else samples.size
    return samples[first:last].astype(np.float32) / 32768.0


# --------------------------------------------------------------------------------------------
# Faces and landmarks

class FaceExtractor:
    r"""MediaPipe's face detector and Face Mesh, both from the models inside the wheel.

    :meth:`faces` gives every face of a frame, :meth:`landmarks` the 468 points of one face;
    :meth:`frame_features` the per-frame vector of the chosen face (:obj:`None` without one).
    """
    def __init__(self, options: VideoOptions = VideoOptions()):
        mp = _mediapipe()
        self.options = options
        with _quiet_native():
            self.detector = mp.solutions.face_detection.FaceDetection(
                model_selection=DETECTORS[options.detector],
                min_detection_confidence=options.min_confidence)
            self.mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                min_detection_confidence=options.min_confidence)
            # The graphs start their models on threads of their own, which log as they do;
            # one blank image through each waits for that inside the quiet window.
            blank = np.zeros((64, 64, 3), dtype=np.uint8)
            self.detector.process(blank)
            self.mesh.process(blank)

    def close(self) -> None:
        with _quiet_native():  # graphs log as their threads wind down
            self.detector.close()
            self.mesh.close()

    @staticmethod
    def _run(graph, image: np.ndarray):
        # The first inference of each (sub)graph logs its set-up, whenever it comes; the
        # redirection costs two system calls.
        with _quiet_native():
            return graph.process(image)

    def faces(self, frame: np.ndarray) -> List[Tuple[np.ndarray, float]]:
        r"""Every detected face as ``(box [x, y, w, h] in pixels, score)``."""
        result = self._run(self.detector, frame)
        height, width = frame.shape[:2]
        out = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            out.append((np.array([b.xmin * width, b.ymin * height, b.width * width,
                                  b.height * height]), float(d.score[0])))
        return out

    def landmarks(self, crop: np.ndarray) -> Optional[np.ndarray]:
        r"""The 468 Face Mesh points of the face in :obj:`crop`, ``[468, 3]`` in crop pixels
        (z on the x scale), or :obj:`None` if the mesh finds no face."""
        result = self._run(self.mesh, crop)
        if not result.multi_face_landmarks:
            return None
        side = crop.shape[1]
        points = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark])
        return points * np.array([side, crop.shape[0], side])

    def frame_features(self, frame: np.ndarray) -> Optional[np.ndarray]:
        faces = self.faces(frame)
        if not faces:
            return None
        box, score = choose_face(faces, self.options.face, frame.shape[1])
        crop, origin = square_crop(frame, box)
        points = self.landmarks(crop)
        if points is None:
            return None
        return frame_vector(points, box, score, frame.shape, self.options.landmarks)


def choose_face(faces: Sequence[Tuple[np.ndarray, float]], choice: str,
                frame_width: int) -> Tuple[np.ndarray, float]:
    r"""The speaker's face among :obj:`faces` (``(box, score)``) by :obj:`choice`."""
    centers = [box[0] + box[2] / 2 for box, _ in faces]
    if choice == 'largest':
        k = int(np.argmax([box[2] * box[3] for box, _ in faces]))
    elif choice == 'left':
        k = int(np.argmin(centers))
    elif choice == 'right':
        k = int(np.argmax(centers))
    else:
        k = int(np.argmin([abs(c - frame_width / 2) for c in centers]))
    return faces[k]


def square_crop(frame: np.ndarray, box: np.ndarray, margin: float = 1.6
                ) -> Tuple[np.ndarray, np.ndarray]:
    r"""A square of side :obj:`margin` x the box's longer side around its centre (black
    outside the frame), and the crop's top-left corner in frame pixels. Face Mesh wants the
    face filling most of its input, with some context around it."""
    side = max(8, int(round(margin * max(box[2], box[3]))))
    x0 = int(round(box[0] + box[2] / 2 - side / 2))
    y0 = int(round(box[1] + box[3] / 2 - side / 2))
    crop = np.zeros((side, side, 3), dtype=np.uint8)
    h, w = frame.shape[:2]
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if fx1 > fx0 and fy1 > fy0:
        crop[fy0 - y0:fy1 - y0, fx0 - x0:fx1 - x0] = frame[fy0:fy1, fx0:fx1]
    return crop, np.array([x0, y0])


def aligned_points(points: np.ndarray) -> Tuple[np.ndarray, float, float]:
    r"""The (x, y) of :obj:`points` in the eye-aligned frame: origin between the outer eye
    corners, x along the eye line, unit = inter-ocular distance, y pointing down the face.
    Returns the points ``[468, 2]``, the roll angle and the inter-ocular distance."""
    left, right = points[_EYE_OUTER[0], :2], points[_EYE_OUTER[1], :2]
    axis = right - left
    distance = float(np.hypot(*axis))
    roll = float(np.arctan2(axis[1], axis[0]))
    c, s = np.cos(-roll), np.sin(-roll)
    rotation = np.array([[c, -s], [s, c]])
    return (points[:, :2] - (left + right) / 2) @ rotation.T / distance, roll, distance


def geometry(points: np.ndarray) -> np.ndarray:
    r"""The scale-free expression and pose values of :obj:`GEOMETRY` but the last four
    (which need the face box), from 468 landmarks ``[468, 3]`` in pixels."""
    p, roll, distance = aligned_points(points)

    def gap(i: int, j: int) -> float:
        return float(np.hypot(*(p[i] - p[j])))

    eyes = [(p[_EYE_OUTER[k]] + p[_EYE_INNER[k]]) / 2 for k in range(2)]
    mouth = (p[_LIP[0]] + p[_LIP[1]]) / 2
    corners = p[list(_CORNER)]
    eye_line_y = (eyes[0][1] + eyes[1][1]) / 2
    z = points[:, 2] / distance
    return np.array([
        gap(*_LID[0]), gap(*_LID[1]),
        eyes[0][1] - p[_BROW[0]][1], eyes[1][1] - p[_BROW[1]][1],  # up is -y
        gap(*_BROW_INNER),
        gap(*_LIP), gap(*_CORNER),
        mouth[1] - corners[:, 1].mean(),       # corners above the lip centre: a smile
        float(np.arctan2(*(corners[1] - corners[0])[::-1])),
        gap(_SUBNASAL, _LIP[0]),
        p[_CHIN][1] - p[_NOSE_TIP][1],
        roll,
        float(z[_CHEEK[0]] - z[_CHEEK[1]]),    # one cheek nearer the camera: a turned head
        (p[_NOSE_TIP][1] - eye_line_y) / max(p[_CHIN][1] - eye_line_y, 1e-6),
    ])


def frame_vector(points: np.ndarray, box: np.ndarray, score: float,
                 frame_shape: Sequence[int], landmarks: bool = True) -> np.ndarray:
    r"""One frame's values: :func:`geometry`, the face's size and centre relative to the
    frame, the detector's score, and (:obj:`landmarks`) the aligned 468 (x, y)."""
    height, width = frame_shape[:2]
    parts = [geometry(points),
             [np.sqrt(box[2] * box[3] / (width * height)), (box[0] + box[2] / 2) / width,
              (box[1] + box[3] / 2) / height, score]]
    if landmarks:
        parts.append(aligned_points(points)[0].reshape(-1))
    return np.concatenate([np.asarray(q, dtype=np.float64).reshape(-1) for q in parts])


def pool(frames: Sequence[Optional[np.ndarray]], frame_width: int) -> np.ndarray:
    r"""One clip's vector from its per-frame vectors (:obj:`None` = no face in that frame):
    mean and (population) std over the frames with a face, the share of frames with a face,
    and 1.0 if no frame has one (then mean and std are zeros)."""
    found = [f for f in frames if f is not None]
    if not found:
        return np.concatenate([np.zeros(2 * frame_width), [0.0, 1.0]]).astype(np.float32)
    stacked = np.stack(found)
    share = len(found) / len(frames)
    return np.concatenate([stacked.mean(0), stacked.std(0), [share, 0.0]]).astype(np.float32)

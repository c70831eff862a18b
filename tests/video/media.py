"""Real pixels generated at test time: a photograph shipped by scikit-image (the astronaut),
moved and scaled across the frames of a video written with PyAV, with a tone on its audio
track (16-bit PCM, so that the decoded samples equal the written ones); and a blank wall."""
import os

import numpy as np

RATE = 16000


def tone(seconds, f0=220.0, seed=0):
    """A gliding tone with a little noise, int16 mono at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * RATE))) / RATE
    x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.2 * t)) + 0.02 * rng.standard_normal(t.size)
    return (x * 32767).astype(np.int16)


def astronaut_frames(count, size=(320, 240), seed=0):
    """The astronaut's head and shoulders (half the frame's height, scaled 0.9-1.3x) moved
    across a grey background."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).crop((120, 20, 320, 220))  # head and shoulders
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        scale = 0.9 + 0.4 * k / max(count - 1, 1)
        side = int(size[1] / 2 * scale)
        face = np.asarray(photo.resize((side, side)))
        canvas = np.full((size[1], size[0], 3), 90, dtype=np.uint8)
        x = int(10 + (size[0] - side - 20) * k / max(count - 1, 1))
        y = int(rng.integers(0, max(size[1] - side, 1)))
        canvas[y:y + side, x:x + side] = face
        frames.append(canvas)
    return frames


def blank_frames(count, size=(320, 240)):
    return [np.full((size[1], size[0], 3), 200, dtype=np.uint8) for _ in range(count)]


def write_video(path, frames, fps=10, audio=None, codec='mpeg4'):
    """Frames (RGB uint8) as a video file (Matroska), with int16 mono audio if given."""
    import av

    path = os.fspath(path)
    with av.open(path, 'w', format='matroska') as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = 'yuv420p'
        sound = None
        if audio is not None:
            sound = container.add_stream('pcm_s16le', rate=RATE, layout='mono')
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            chunk = 1600
            for i in range(0, audio.size, chunk):
                frame = av.AudioFrame.from_ndarray(audio[None, i:i + chunk], format='s16',
                                                   layout='mono')
                frame.sample_rate = RATE
                frame.pts = i
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return path


def talking_clip(path, seconds=1.0, fps=10, seed=0, f0=220.0):
    frames = astronaut_frames(int(round(seconds * fps)), seed=seed)
    return write_video(path, frames, fps, audio=tone(seconds, f0, seed))


def two_faces_frame():
    """The astronaut twice: small on the left, large on the right (480 x 240)."""
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).crop((120, 20, 320, 220))
    canvas = np.full((240, 480, 3), 90, dtype=np.uint8)
    canvas[60:180, 40:160] = np.asarray(photo.resize((120, 120)))
    canvas[20:220, 260:460] = np.asarray(photo.resize((200, 200)))
    return canvas

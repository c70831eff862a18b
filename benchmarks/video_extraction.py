r"""Speed of the visual feature extraction (:mod:`dsgdn_pyg.video`) on a CPU: frames per
second, the real-time factor at the default sampling rate, and the time of each stage --
decoding (PyAV/FFmpeg, every frame decoded, the sampled ones converted to RGB and scaled),
face finding (MediaPipe's BlazeFace detector), the landmark model (Face Mesh, 468 points, on
the crop around the face), the per-frame features and pooling -- plus the openSMILE pass over
the same file's audio track.

The input is generated here: the astronaut photograph of scikit-image moved and scaled across
a grey 1280x720 frame (MELD's clip size), 25 fps, H.264, with a tone on a PCM audio track.
Every stage runs on one process; the load of the other processes on the machine during the
run is measured and printed (the machine may be shared).

    python benchmarks/video_extraction.py [--seconds 20] [--fps 5] [--json out.json]
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'video'))  # media.py: the generated video

from benchmarks.common import command_line, fmt, machine_line  # noqa: E402
from dsgdn_pyg.profile import cpu_readings, foreign_cpu_fraction, machine_info  # noqa: E402


def make_video(path: str, seconds: float, size=(1280, 720), rate: int = 25) -> str:
    from media import astronaut_frames, tone, write_video  # tests/video/media.py

    count = int(seconds * rate)
    frames = astronaut_frames(count, size=size)
    return write_video(path, frames, rate, audio=tone(seconds), codec='libx264')


def measure(path: str, seconds: float, fps: float):
    from dsgdn_pyg.video import (Clip, FaceExtractor, VideoOptions, choose_face,
                                 decode_frames, frame_vector, pool, square_crop,
                                 video_audio_features, video_features)

    options = VideoOptions(fps=fps)
    stages = dict(decode=0.0, faces=0.0, landmarks=0.0, features=0.0)
    made = time.perf_counter()
    extractor = FaceExtractor(options)
    setup = time.perf_counter() - made
    readings = cpu_readings()
    start = time.perf_counter()
    frames, found = [], 0
    iterator = decode_frames(path, fps, max_side=options.max_side)
    while True:
        t = time.perf_counter()
        item = next(iterator, None)
        stages['decode'] += time.perf_counter() - t
        if item is None:
            break
        image = item[1]
        t = time.perf_counter()
        faces = extractor.faces(image)
        stages['faces'] += time.perf_counter() - t
        if not faces:
            frames.append(None)
            continue
        box, score = choose_face(faces, options.face, image.shape[1])
        t = time.perf_counter()
        points = extractor.landmarks(square_crop(image, box)[0])
        stages['landmarks'] += time.perf_counter() - t
        t = time.perf_counter()
        frames.append(None if points is None else
                      frame_vector(points, box, score, image.shape, options.landmarks))
        stages['features'] += time.perf_counter() - t
        found += points is not None
    t = time.perf_counter()
    pool(frames, options.frame_width)
    stages['features'] += time.perf_counter() - t
    staged = time.perf_counter() - start
    foreign = foreign_cpu_fraction(*readings)
    extractor.close()

    # The library call users make (cache off), and the audio track through openSMILE.
    readings2 = cpu_readings()
    t = time.perf_counter()
    video_features([Clip(path)], options, cache_root='')
    whole = time.perf_counter() - t
    t = time.perf_counter()
    video_audio_features([Clip(path)], cache_root='')
    audio = time.perf_counter() - t
    foreign2 = foreign_cpu_fraction(*readings2)
    return dict(seconds=seconds, fps=fps, frames=len(frames), faces_found=found,
                setup_s=setup, staged_s=staged, stages_s=stages, video_features_s=whole,
                audio_s=audio, foreign_cpu=max(foreign, foreign2),
                frames_per_s=len(frames) / staged, realtime_factor=seconds / whole,
                realtime_factor_with_audio=seconds / (whole + audio))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=20.0, help='length of the video')
    parser.add_argument('--fps', type=float, default=5.0, help='frames sampled per second')
    parser.add_argument('--json', metavar='PATH', help='also write the numbers as JSON')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(os.path.join(tmp, 'talk.mp4'), args.seconds)
        r = measure(path, args.seconds, args.fps)
    print(command_line('benchmarks/video_extraction.py', argv))
    print(machine_line(machine_info()))
    print(f"Input: {args.seconds:g} s of 1280x720 H.264 at 25 fps (+ PCM audio), sampled at "
          f"{args.fps:g} fps -> {r['frames']} frames, face found in {r['faces_found']}")
    print(f"Load: other processes used {100 * r['foreign_cpu']:.0f}% of the "
          f"{os.cpu_count()} cores during the measurement (shared machine)")
    print(f"Model set-up (once per run): {fmt(r['setup_s'], 3)} s")
    print('| stage | total s | ms / sampled frame | share |')
    print('|---|---|---|---|')
    for name, value in r['stages_s'].items():
        print(f"| {name} | {fmt(value, 3)} | {fmt(1000 * value / r['frames'], 2)} | "
              f"{fmt(100 * value / r['staged_s'], 0)}% |")
    print(f"| all | {fmt(r['staged_s'], 3)} | {fmt(1000 * r['staged_s'] / r['frames'], 2)} | "
          f"100% |")
    print(f"Sampled frames per second: {fmt(r['frames_per_s'], 1)}")
    print(f"video_features(): {fmt(r['video_features_s'], 3)} s for {args.seconds:g} s of "
          f"video = {fmt(r['realtime_factor'], 1)}x real time (target >= 5x: "
          f"{'MET' if r['realtime_factor'] >= 5 else 'NOT MET'})")
    print(f"+ openSMILE on the audio track: {fmt(r['audio_s'], 3)} s; both modalities "
          f"{fmt(r['realtime_factor_with_audio'], 1)}x real time")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(r, f, indent=2)


if __name__ == '__main__':
    main()

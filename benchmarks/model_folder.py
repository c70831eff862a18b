r"""Export a checkpoint as a model folder, copy it away, load it back: times, sizes, and the
largest difference of its predictions to the checkpoint's (issue 23).

    python benchmarks/model_folder.py --checkpoint runs/meld/best.pt [--input talk.csv]

Without --input, the test split's first 20 dialogues of the checkpoint's own dataset
(a ``csv:``/``meld-csv:`` corpus) are predicted. The folder is written to, and copied within,
a temporary directory; the copy is used with an empty ``DSGDN_PYG_CACHE``.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import command_line, machine_line  # noqa: E402


def folder_size(folder):
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(folder) for f in files)


def test_dialogues(payload, limit):
    from dsgdn_pyg.inference.predict import checkpoint_columns
    from dsgdn_pyg.datasets.transcript import read_transcripts

    kind, _, path = payload['dataset'].partition(':')
    files = {'meld-csv': 'test_sent_emo.csv'}
    mapping = (payload.get('data_options') or {}).get('csv') or {}
    name = (mapping.get('files') or {}).get('test') or files.get(kind, 'test.csv')
    dialogues = read_transcripts([os.path.join(path, name)], checkpoint_columns(payload))
    return dialogues[:limit]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--input', action='append', help='transcript file(s) to predict')
    parser.add_argument('--dialogues', type=int, default=20)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from dsgdn_pyg.inference.model_folder import export_model, load_payload
    from dsgdn_pyg.inference.predict import predict_dialogues, transcripts_of_checkpoint
    from dsgdn_pyg.profile import machine_info

    torch.set_num_threads(1)
    print(command_line('benchmarks/model_folder.py', argv))
    print(machine_line(machine_info()))
    tmp_dir = tempfile.TemporaryDirectory()
    tmp = tmp_dir.name
    # First, in a fresh process: the export loads the text encoder itself.
    start = time.perf_counter()
    export_model(args.checkpoint, os.path.join(tmp, 'exported'))
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    payload, _ = load_payload(args.checkpoint)
    load_checkpoint_s = time.perf_counter() - start
    if args.input:
        dialogues, _ = transcripts_of_checkpoint(payload, args.input)
    else:
        dialogues = test_dialogues(payload, args.dialogues)
    utterances = sum(len(d.utterances) for d in dialogues)
    start = time.perf_counter()
    original = predict_dialogues(payload, dialogues, device='cpu')
    predict_checkpoint_s = time.perf_counter() - start
    with tmp_dir:
        moved = os.path.join(tmp, 'elsewhere', 'model')
        shutil.copytree(os.path.join(tmp, 'exported'), moved)
        shutil.rmtree(os.path.join(tmp, 'exported'))
        os.environ['DSGDN_PYG_CACHE'] = os.path.join(tmp, 'empty-cache')
        start = time.perf_counter()
        folder_payload, _ = load_payload(moved)
        load_folder_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = predict_dialogues(folder_payload, dialogues, device='cpu')
        predict_folder_s = time.perf_counter() - start
        size = folder_size(moved)
        files = sorted(((os.path.relpath(os.path.join(r, f), moved),
                         os.path.getsize(os.path.join(r, f)))
                        for r, _, fs in os.walk(moved) for f in fs), key=lambda x: -x[1])
    diff = max(float(np.abs(a.probabilities - b.probabilities).max())
               for a, b in zip(original, loaded))
    same = all(a.predicted == b.predicted for a, b in zip(original, loaded))
    print(f"checkpoint {args.checkpoint}: {os.path.getsize(args.checkpoint) / 1e6:.1f} MB, "
          f"{len(dialogues)} dialogues, {utterances} utterances")
    print(f"export (first, fresh process): {export_s:6.2f} s")
    print(f"folder size:         {size / 1e6:6.1f} MB  (largest: "
          + ', '.join(f'{n} {s / 1e6:.1f} MB' for n, s in files[:3]) + ')')
    print(f"load, checkpoint:    {load_checkpoint_s:6.2f} s   load, folder (with SHA-256 "
          f"checks): {load_folder_s:6.2f} s")
    print(f"predict, checkpoint: {predict_checkpoint_s:6.2f} s   predict, folder: "
          f"{predict_folder_s:6.2f} s   (ratio {predict_folder_s / predict_checkpoint_s:.2f}; "
          f"each loads its text encoder)")
    print(f"load average: {os.getloadavg()[0]:.1f}")
    print(f"largest |probability difference|: {diff:.2e}; same labels: {same}")


if __name__ == '__main__':
    main()

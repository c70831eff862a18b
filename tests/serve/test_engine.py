"""The worker's side: a batch of streamed lines from several sockets (texts embedded in one
call) answers what the stream protocol answers line by line (1e-5); a closed socket's
dialogues are freed."""
import json

from serve_requests import WORDS
from dsgdn_pyg.inference.streaming import StreamingRecognizer, process_line
from dsgdn_pyg.serve.engine import CloseJob, Engine, PushJob
from dsgdn_pyg.serve.settings import ServeSettings


def test_a_batch_of_pushes_equals_the_protocol_line_by_line(model_folder):
    engine = Engine(model_folder, ServeSettings())
    assert engine.texts is not None  # TF-IDF reads no context: the batch's texts prefetched
    sockets = [engine.open_socket(), engine.open_socket()]
    lines = [json.dumps({'dialogue': k % 3, 'speaker': ['a', 'b'][k % 2],
                         'text': ' '.join(WORDS[k % 7:k % 7 + 3])}) for k in range(12)]
    lines[5] = json.dumps({'dialogue': 2, 'speaker': 'a', 'text': 7})  # a bad text
    jobs = [PushJob(sockets[k % 2], line, k // 2 + 1) for k, line in enumerate(lines)]
    answers = engine.run_batch(jobs[:5]) + engine.run_batch(jobs[5:])
    for s in range(2):
        alone = StreamingRecognizer.from_checkpoint(model_folder)
        expected = [process_line(alone, line, n) for n, line in
                    enumerate(lines[s::2], start=1)]
        for got, want in zip(answers[s::2], expected):
            assert set(got) == set(want)
            if 'probabilities' in want:
                assert max(abs(got['probabilities'][c] - p)
                           for c, p in want['probabilities'].items()) < 1e-5
                assert got['index'] == want['index'] and got['label'] == want['label']
            else:
                assert got == want
    assert len(engine.sessions) == 6  # 3 dialogues on each socket
    engine.run_batch([CloseJob(sockets[0])])
    assert len(engine.sessions) == 3 and sockets[0].recognizer.dialogues == []


def test_warm_up_leaves_nothing_open(model_folder):
    engine = Engine(model_folder, ServeSettings())
    engine.warm_up()
    assert len(engine.sessions) == 0


def test_pushes_are_answered_before_the_batch_s_dialogues(model_folder):
    from serve_requests import dialogues
    from dsgdn_pyg.datasets.transcript import as_transcripts
    from dsgdn_pyg.serve.engine import PredictJob

    engine = Engine(model_folder, ServeSettings())
    events = []
    probabilities = engine.predictor.probabilities
    engine.predictor.probabilities = lambda *a: events.append('forward') or probabilities(*a)
    jobs = [PredictJob(as_transcripts(dialogues(2))),
            PushJob(engine.open_socket(), json.dumps({'speaker': 'a', 'text': 'oh my'}), 1)]
    results = engine.run_batch(jobs, lambda i, answer: events.append(i))
    assert events == [1, 'forward']
    assert results[1]['index'] == 0 and len(results[0]['dialogues']) == 2

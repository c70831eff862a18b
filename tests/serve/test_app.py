"""The application through FastAPI's TestClient (and httpx's ASGI transport for concurrent
requests): answers equal to `predict_dialogues` and to the stream protocol run directly (to
1e-5), keys, limits and every refusal a 4xx with a JSON body."""
import asyncio
import json
import logging
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from serve_requests import dialogues
from dsgdn_pyg.inference.predict import predict_dialogues
from dsgdn_pyg.inference.streaming import StreamingRecognizer, process_line
from dsgdn_pyg.serve.app import create_app
from dsgdn_pyg.serve.engine import Engine
from dsgdn_pyg.serve.settings import ServeSettings

KEY = 'k' * 20 + '-secret'
TOL = 1e-5


@pytest.fixture(scope='module')
def engine(model_folder):
    return Engine(model_folder, ServeSettings())


@pytest.fixture(scope='module')
def client(engine):
    with TestClient(create_app(engine)) as client:
        yield client


def probabilities(body):
    return np.array([list(u['probabilities'].values())
                     for d in body['dialogues'] for u in d['utterances']])


def test_predict_equals_predict_dialogues(client, model_folder):
    talk = dialogues(5, seed=1)
    response = client.post('/v1/predict', json={'dialogues': talk})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = predict_dialogues(model_folder, talk, device='cpu')
    assert body['labels'] == expected[0].label_names
    assert [len(d['utterances']) for d in body['dialogues']] == [len(d) for d in talk]
    for d in body['dialogues']:
        for u in d['utterances']:
            assert list(u['probabilities']) == body['labels']
    reference = np.concatenate([p.probabilities for p in expected])
    assert np.abs(probabilities(body) - reference).max() < TOL
    # The labels are the arg-max of probabilities from another batching (equal to TOL): they
    # must agree wherever the top two classes are further apart than that.
    top_two = np.sort(reference, axis=1)[:, -2:]
    for got, want, gap in zip([u['label'] for d in body['dialogues'] for u in d['utterances']],
                              [name for p in expected for name in p.predicted],
                              top_two[:, 1] - top_two[:, 0]):
        assert got == want or gap < TOL


def test_concurrent_requests_share_forward_passes_and_equal_one_at_a_time(model_folder):
    import httpx

    engine = Engine(model_folder, ServeSettings(max_batch=64, max_wait_ms=500))
    app = create_app(engine)
    requests = [dialogues(k % 3 + 1, seed=10 + k) for k in range(12)]
    # In the same batch, a request the model refuses (more speakers than it knows) fails alone.
    crowded = [[{'speaker': f'speaker {k}', 'text': 'oh my'} for k in range(40)]]

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url='http://test') as c:
                responses = await asyncio.gather(
                    *(c.post('/v1/predict', json={'dialogues': d})
                      for d in requests[:6] + [crowded] + requests[6:]))
                return responses, app.state.batcher.batches

    responses, batches = asyncio.run(main())
    bad = responses.pop(6)
    assert bad.status_code == 422 and 'speakers' in bad.json()['error'], bad.text
    assert all(r.status_code == 200 for r in responses)
    assert batches < len(requests)  # gathered: fewer forward passes than requests
    for talk, response in zip(requests, responses):
        alone = np.concatenate([p.probabilities for p in predict_dialogues(
            model_folder, talk, device='cpu', batch_size=1)])
        assert np.abs(probabilities(response.json()) - alone).max() < TOL


STREAM_LINES = [
    {'dialogue': 'call-1', 'speaker': 'agent', 'text': 'oh my god'},
    {'dialogue': 'call-2', 'speaker': 'Ross', 'text': 'no way', 'id': 7},
    {'dialogue': 'call-1', 'speaker': 'caller', 'text': 'you are kidding'},
    '{"speaker": ',
    {'dialogue': 'call-1', 'speaker': 'agent', 'features': {'t': 'oops'}},
    {'dialogue': 'call-1', 'speaker': 'agent', 'text': 'great', 'mood': 1},
    '   ',
    {'dialogue': 'call-1', 'end': True},
    {'dialogue': 'call-1', 'speaker': 'caller', 'text': 'hate this so sorry'},
    {'dialogue': 3, 'speaker': 1, 'text': 'i love it'},
    {'dialogue': 'call-2', 'speaker': 'Rachel', 'text': 'what okay'},
]


def stream_text(lines):
    return [line if isinstance(line, str) else json.dumps(line) for line in lines]


def assert_same_answer(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if key == 'probabilities':
            assert list(got[key]) == list(value)
            assert max(abs(got[key][c] - p) for c, p in value.items()) < TOL
        else:
            assert got[key] == value, key


def test_stream_equals_the_protocol_and_sockets_are_independent(client, model_folder):
    recognizer = StreamingRecognizer.from_checkpoint(model_folder)
    texts = stream_text(STREAM_LINES)
    expected = [process_line(recognizer, line, n) for n, line in enumerate(texts, start=1)]
    expected = [a for a in expected if a is not None]
    with client.websocket_connect('/v1/stream') as first, \
            client.websocket_connect('/v1/stream') as second:
        for line in texts:  # both sockets at once, the same dialogue ids
            first.send_text(line)
            second.send_text(line)
        for socket in (first, second):
            answers = [socket.receive_json() for _ in expected]
            for got, want in zip(answers, expected):
                assert_same_answer(got, want)
    assert [a.get('field') for a in expected if 'error' in a] == [None, 'features.t', 'mood']


def test_refusals_are_4xx_json_naming_the_problem(client):
    cases = [
        (b'{"dialogues": [', 400, 'the body is not valid JSON'),
        (b'\xff\xfe', 400, 'the body is not UTF-8'),
        (b'[1, 2]', 422, 'the body must be a JSON object'),
        (b'{"dialogues": [], "x": 1}', 422, "unknown field 'x'"),
        (b'{"dialogues": []}', 422, "field 'dialogues' must be a non-empty list"),
        (b'{"dialogues": [[{"speaker": "a"}]]}', 422,
         "dialogue '0': utterance 0: field 'text' is missing"),
        (b'{"dialogues": [[]]}', 422, "dialogue '0' has no utterances"),
        (b'{"dialogues": [[{"speaker": "a", "text": "x", "video": "/etc/passwd"}]]}', 422,
         "field 'video': the server reads no files"),
    ]
    for body, status, message in cases:
        response = client.post('/v1/predict', content=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()['error'], response.json()
    assert client.get('/v1/nothing').status_code == 404
    assert 'error' in client.get('/v1/nothing').json()
    assert client.get('/v1/predict').status_code == 405
    # The server keeps serving, and describes itself.
    assert client.post('/v1/predict', json={'dialogues': dialogues(1)}).status_code == 200
    schema = client.get('/openapi.json').json()
    assert 'requestBody' in schema['paths']['/v1/predict']['post']
    assert client.get('/docs').status_code == 200


def test_request_limits(model_folder):
    settings = ServeSettings(max_body_bytes=2000, max_dialogues=2, max_utterances=5,
                             max_text_chars=20)
    with TestClient(create_app(Engine(model_folder, settings))) as client:
        def refused(body, status=422):
            response = client.post('/v1/predict', json=body)
            assert response.status_code == status, response.text
            return response.json()['error']
        assert 'the limit is 2000' in refused({'dialogues': [[{'speaker': 'a', 'text': 'x'}]] * 100},
                                              413)
        assert '3 dialogues in one request; the limit is 2' in refused(
            {'dialogues': dialogues(3, low=1, high=1)})
        assert '6 utterances in one request; the limit is 5' in refused(
            {'dialogues': dialogues(2, low=3, high=3)})
        assert "utterance 1: field 'text' has 21 characters; the limit is 20" in refused(
            {'dialogues': [[{'speaker': 'a', 'text': 'ok'}, {'speaker': 'a', 'text': 'x' * 21}]]})
        with client.websocket_connect('/v1/stream') as socket:
            socket.send_json({'dialogue': 1, 'speaker': 'a', 'text': 'x' * 21})
            answer = socket.receive_json()
            assert answer['field'] == 'text' and 'the limit is 20' in answer['error']
            socket.send_json({'dialogue': 1, 'speaker': 'a', 'video': 'clip.mp4'})
            assert socket.receive_json()['field'] == 'video'


def test_keys_guard_every_route_but_healthz(model_folder, tmp_path, caplog):
    engine = Engine(model_folder, ServeSettings())
    good = {'Authorization': f'Bearer {KEY}'}
    caplog.set_level(logging.INFO, logger='dsgdn_pyg.serve.access')
    with TestClient(create_app(engine, api_keys=['another-key-0123456789', KEY])) as client:
        assert client.get('/healthz').status_code == 200
        for headers in ({}, {'Authorization': 'Bearer wrong'}, {'Authorization': KEY},
                        {'Authorization': 'Basic ' + KEY}):
            response = client.get('/v1/model', headers=headers)
            assert response.status_code == 401 and 'API key' in response.json()['error']
            assert response.headers['www-authenticate'] == 'Bearer'
            assert client.post('/v1/predict', json={'dialogues': dialogues(1)},
                               headers=headers).status_code == 401
        model = client.get('/v1/model', headers=good).json()
        assert model['causal'] is True and model['streaming'] is True
        assert model['modalities'] == ['t'] and len(model['labels']) == 7
        assert 'emotions' in model['summary'] and model['encoder']['format']
        assert client.post('/v1/predict', json={'dialogues': dialogues(1)},
                           headers=good).status_code == 200
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect('/v1/stream') as socket:
                socket.receive_text()
        assert refused.value.code == 1008
        with client.websocket_connect('/v1/stream', headers=good) as socket:
            socket.send_json({'speaker': 'a', 'text': 'oh my'})
            assert socket.receive_json()['index'] == 0
    assert KEY not in caplog.text


def test_access_log_one_json_line_per_request_texts_only_when_asked(model_folder, caplog):
    engine = Engine(model_folder, ServeSettings())
    talk = [[{'speaker': 'a', 'text': 'you are kidding'}, {'speaker': 'b', 'text': 'no way'}]]
    caplog.set_level(logging.INFO, logger='dsgdn_pyg.serve.access')
    for log_text in (False, True):
        caplog.clear()
        with TestClient(create_app(engine, log_text=log_text)) as client:
            client.post('/v1/predict', json={'dialogues': talk})
            client.post('/v1/predict', content=b'nonsense')
        lines = [json.loads(r.getMessage()) for r in caplog.records
                 if r.name == 'dsgdn_pyg.serve.access']
        assert [(l['route'], l['status'], l['utterances']) for l in lines] == \
            [('/v1/predict', 200, 2), ('/v1/predict', 400, 0)]
        assert all(l['latency_ms'] >= 0 for l in lines)
        assert ('kidding' in caplog.text) is log_text


def test_open_dialogues_are_bounded_and_freed(model_folder):
    settings = ServeSettings(max_open_dialogues=2, idle_timeout_s=0.05)
    with TestClient(create_app(Engine(model_folder, settings))) as client:
        with client.websocket_connect('/v1/stream') as socket:
            for dialogue in ('a', 'b', 'c'):
                socket.send_json({'dialogue': dialogue, 'speaker': 'x', 'text': 'oh my'})
            answers = [socket.receive_json() for _ in range(3)]
            assert [a.get('index') for a in answers] == [0, 0, None]
            assert answers[2]['field'] == 'dialogue' and "the server's limit" in \
                answers[2]['error']
            # Idle: both are ended and the socket told (no push for 0.05 s).
            ended = {socket.receive_json()['dialogue'] for _ in range(2)}
            assert ended == {'a', 'b'}
            assert client.get('/healthz').json()['open_dialogues'] == 0
        # A closed socket's dialogues are freed.
        with client.websocket_connect('/v1/stream') as socket:
            socket.send_json({'dialogue': 'c', 'speaker': 'x', 'text': 'no way'})
            assert socket.receive_json()['index'] == 0
        for _ in range(200):
            if client.get('/healthz').json()['open_dialogues'] == 0:
                break
            threading.Event().wait(0.02)
        assert client.get('/healthz').json()['open_dialogues'] == 0


def test_a_model_that_cannot_stream_says_why(model_folder):
    engine = Engine(model_folder, ServeSettings())
    engine.streaming, engine.stream_error = None, 'it reads future utterances'
    with TestClient(create_app(engine)) as client:
        with client.websocket_connect('/v1/stream') as socket:
            assert 'cannot stream: it reads future' in socket.receive_json()['error']
        assert client.get('/v1/model').json()['streaming'] is False


def test_a_full_queue_answers_503_with_retry_after(model_folder):
    import httpx

    engine = Engine(model_folder, ServeSettings(max_queue=1, max_wait_ms=0))
    entered, release = threading.Event(), threading.Event()
    run_batch = engine.run_batch

    def held(jobs, deliver):  # the worker is busy until released
        entered.set()
        release.wait(10)
        return run_batch(jobs, deliver)

    engine.run_batch = held
    app = create_app(engine)
    body = {'dialogues': dialogues(1)}

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url='http://test') as c:
                busy = asyncio.ensure_future(c.post('/v1/predict', json=body))
                while not entered.is_set():
                    await asyncio.sleep(0.005)
                waiting = asyncio.ensure_future(c.post('/v1/predict', json=body))
                while app.state.batcher.waiting < 1:
                    await asyncio.sleep(0.005)
                refused = await c.post('/v1/predict', json=body)
                release.set()
                return refused, await busy, await waiting

    refused, busy, waiting = asyncio.run(main())
    assert refused.status_code == 503 and refused.headers['retry-after'] == '1'
    assert 'busy' in refused.json()['error']
    assert busy.status_code == waiting.status_code == 200


def test_a_failure_of_the_server_is_a_500_json_and_the_server_goes_on(model_folder):
    engine = Engine(model_folder, ServeSettings())
    run_batch, failures = engine.run_batch, [1]

    def failing_once(jobs, deliver):
        if failures:
            failures.pop()
            raise RuntimeError('a bug')
        return run_batch(jobs, deliver)

    engine.run_batch = failing_once
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        response = client.post('/v1/predict', json={'dialogues': dialogues(1)})
        assert response.status_code == 500
        assert response.json() == {'error': 'the server failed on this request', 'field': None}
        assert client.post('/v1/predict', json={'dialogues': dialogues(1)}).status_code == 200

"""Load test of ``dsgdn-pyg serve``: throughput and latency under 1, 16, 64 and 256
concurrent conversations, whole dialogues (``POST /v1/predict``) and streamed pushes
(``WebSocket /v1/stream``), the server's memory, and its memory over 10,000 streamed
dialogues opened and ended.

    python benchmarks/serve_load.py --model runs/meld-causal/model \\
        --json benchmarks/results/serve_load.json

The server is a real ``python -m dsgdn_pyg.cli serve --quiet`` process on a free port of
127.0.0.1 (its other options: --server-args); the clients are asyncio tasks of this process
(httpx for HTTP, websockets for the stream), on the same machine. The dialogues are MELD's
test transcripts (--transcripts), cycled.

- **Whole dialogues**: C clients, each sending one dialogue per request and waiting for
  the answer before its next, --requests requests in all (at least 2 per client).
- **Streamed pushes**: C WebSockets, each a live conversation: one utterance sent, its answer
  awaited, the next; a dialogue's last utterance is followed by its ``end``; --pushes pushes
  per socket. A push's latency is from sending the line to receiving its answer.
  *Saturated*: each socket pushes again as soon as it has its answer (the server's capacity);
  *paced*: each pushes once every --pace-ms (people talking; the first pushes spread over
  one period), --paced-pushes per socket.
- **Throughput**: utterances answered per second of wall-clock time of the level;
  **ratio**: against C = 1 (one at a time).
- **Memory**: the server's resident set (VmRSS of /proc) after each level; then 16 sockets
  open and end --memory-dialogues dialogues of 2 utterances each, RSS sampled every 1,000.

Every loop is bounded; the server gets SIGTERM at the end and must exit 0.
"""
import argparse
import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import REPOSITORY, command_line  # noqa: E402

MELD_TEST = os.path.join(REPOSITORY, '..', 'shared', 'data', 'meld', 'test_sent_emo.csv')
TARGETS = {'ratio_64': 3.0, 'stream_p99_ms_64': 50.0, 'memory_growth_mb': 20.0}


def meld_dialogues(path: str) -> List[List[Dict[str, str]]]:
    r"""The dialogues of a MELD CSV, as ``[{'speaker', 'text'}]`` lists in order."""
    by_id: Dict[str, List[Any]] = defaultdict(list)
    with open(path, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            by_id[row['Dialogue_ID']].append((int(row['Utterance_ID']), row['Speaker'],
                                              row['Utterance']))
    return [[{'speaker': s, 'text': t} for _, s, t in sorted(rows)] for rows in by_id.values()]


def summary(latencies_s: Sequence[float], utterances: int, wall_s: float) -> Dict[str, Any]:
    ms = np.asarray(latencies_s) * 1e3
    return {'utterances': utterances, 'wall_s': round(wall_s, 3),
            'utt_per_s': round(utterances / wall_s, 1), 'n': int(ms.size),
            **{f'p{q}_ms': round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}}


def cpu_s(pid: int) -> float:
    r"""CPU seconds (user + system) a process has used so far."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def measured(level: Any, server_pid: int) -> Dict[str, Any]:
    r"""Runs a level's coroutine, adding the CPU seconds the server and this client
    used during it, and the server's resident set after it."""
    server, client = cpu_s(server_pid), time.process_time()
    result = asyncio.run(level)
    result.update(server_cpu_s=round(cpu_s(server_pid) - server, 2),
                  client_cpu_s=round(time.process_time() - client, 2),
                  rss_mb=round(rss_mb(server_pid), 1))
    return result


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


# --- the clients -----------------------------------------------------------------------------

async def predict_level(url: str, dialogues, clients: int, requests: int) -> Dict[str, Any]:
    import httpx

    requests = max(requests, 2 * clients)
    latencies: List[float] = []
    counts = [0]

    async def client(k: int, http) -> None:
        for r in range(k, requests, clients):
            dialogue = dialogues[r % len(dialogues)]
            start = time.perf_counter()
            response = await http.post(f'{url}/v1/predict', json={'dialogues': [dialogue]})
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()
            counts[0] += len(dialogue)

    # One connection per client, each its own httpx client: a shared pool of 64 connections
    # costs the client more CPU than the server and queues requests unfairly on its side.
    https = [httpx.AsyncClient(timeout=300) for _ in range(clients)]
    try:
        await asyncio.gather(*(client(k, https[k]) for k in range(clients)))  # warm-up
        latencies.clear()
        counts[0] = 0
        start = time.perf_counter()
        await asyncio.gather(*(client(k, https[k]) for k in range(clients)))
        wall = time.perf_counter() - start
    finally:
        for http in https:
            await http.aclose()
    return summary(latencies, counts[0], wall)


async def stream_level(ws_url: str, dialogues, sockets: int, pushes: int,
                       pace_s: float = 0.0) -> Dict[str, Any]:
    from websockets.asyncio.client import connect

    latencies: List[float] = []

    async def conversation(k: int) -> int:
        async with connect(ws_url, max_size=None) as ws:
            d, i, done = k, 0, 0
            # Paced: a push every pace_s seconds, the sockets' first pushes spread over one.
            begin = time.perf_counter() + pace_s * k / max(sockets, 1)
            while done < pushes:
                if pace_s:
                    await asyncio.sleep(max(0.0, begin + done * pace_s - time.perf_counter()))
                dialogue = dialogues[d % len(dialogues)]
                u = dialogue[i]
                start = time.perf_counter()
                await ws.send(json.dumps({'dialogue': f'd{d}', 'speaker': u['speaker'],
                                          'text': u['text']}))
                answer = json.loads(await ws.recv())
                latencies.append(time.perf_counter() - start)
                assert 'error' not in answer, answer
                done, i = done + 1, i + 1
                if i == len(dialogue):
                    await ws.send(json.dumps({'dialogue': f'd{d}', 'end': True}))
                    assert json.loads(await ws.recv()).get('ended')
                    d, i = d + sockets, 0
            return done

    await asyncio.gather(*(conversation(k) for k in range(min(sockets, 4))))  # warm-up
    latencies.clear()
    start = time.perf_counter()
    done = await asyncio.gather(*(conversation(k) for k in range(sockets)))
    return summary(latencies, sum(done), time.perf_counter() - start)


async def memory_run(ws_url: str, pid: int, total: int, sockets: int = 16) -> Dict[str, Any]:
    from websockets.asyncio.client import connect

    samples: List[Dict[str, float]] = []
    opened = [0]

    async def worker(k: int) -> None:
        async with connect(ws_url) as ws:
            while opened[0] < total:
                d = opened[0]
                opened[0] += 1
                for text in ('oh my god', 'no way, that is amazing'):
                    await ws.send(json.dumps({'dialogue': f'm{d}', 'speaker': 'A', 'text': text}))
                    await ws.recv()
                await ws.send(json.dumps({'dialogue': f'm{d}', 'end': True}))
                await ws.recv()
                if (d + 1) % 1000 == 0:
                    samples.append({'dialogues': d + 1, 'rss_mb': round(rss_mb(pid), 1)})

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(sockets)))
    samples.sort(key=lambda s: s['dialogues'])
    rss = [s['rss_mb'] for s in samples]
    return {'dialogues': total, 'sockets': sockets, 'wall_s': round(time.perf_counter() - start, 1),
            'samples': samples, 'growth_mb': round(rss[-1] - rss[0], 1) if rss else None}


# --- the server ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, extra: Sequence[str]) -> subprocess.Popen:
    import httpx

    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPOSITORY, env.get('PYTHONPATH')) if p)
    process = subprocess.Popen([sys.executable, '-m', 'dsgdn_pyg.cli', 'serve', '--model',
                                model, '--port', str(port), '--quiet', *extra], env=env)
    for _ in range(600):  # at most 2 minutes to load
        if process.poll() is not None:
            raise SystemExit(f'the server exited with status {process.returncode}')
        try:
            if httpx.get(f'http://127.0.0.1:{port}/healthz', timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit('the server did not become healthy in 2 minutes')


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--model', required=True, help='A model folder (causal, text).')
    parser.add_argument('--transcripts', default=MELD_TEST, help='A MELD-format CSV.')
    parser.add_argument('--concurrency', default='1,16,64,256')
    parser.add_argument('--requests', type=int, default=512,
                        help='/v1/predict requests per level (at least 2 per client).')
    parser.add_argument('--pushes', type=int, default=40, help='Pushes per socket.')
    parser.add_argument('--pace-ms', type=float, default=1000,
                        help='Paced streams: one push per socket every this many ms.')
    parser.add_argument('--paced-pushes', type=int, default=10, help='Pushes per paced socket.')
    parser.add_argument('--memory-dialogues', type=int, default=10_000)
    parser.add_argument('--server-args', default='', help='More `serve` options, quoted.')
    parser.add_argument('--json', help='Write the results here.')
    args = parser.parse_args(argv)
    from dsgdn_pyg.profile import machine_info

    dialogues = meld_dialogues(args.transcripts)
    levels = [int(c) for c in args.concurrency.split(',')]
    port = free_port()
    server = start_server(args.model, port, args.server_args.split())
    url, ws_url = f'http://127.0.0.1:{port}', f'ws://127.0.0.1:{port}/v1/stream'
    results: Dict[str, Any] = {'command': command_line('benchmarks/serve_load.py', argv),
                               'machine': machine_info(), 'model': args.model,
                               'load_before': os.getloadavg(), 'predict': {}, 'stream': {},
                               'stream_paced': {}}
    try:
        results['rss_mb_loaded'] = round(rss_mb(server.pid), 1)
        for c in levels:
            results['predict'][c] = measured(predict_level(url, dialogues, c, args.requests),
                                             server.pid)
            print('predict', c, results['predict'][c], flush=True)
        for c in levels:
            results['stream'][c] = measured(stream_level(ws_url, dialogues, c, args.pushes),
                                            server.pid)
            print('stream', c, results['stream'][c], flush=True)
        for c in levels if args.paced_pushes else []:
            results['stream_paced'][c] = measured(stream_level(
                ws_url, dialogues, c, args.paced_pushes, args.pace_ms / 1000), server.pid)
            print('stream paced', c, results['stream_paced'][c], flush=True)
        if args.memory_dialogues:
            results['memory'] = asyncio.run(memory_run(ws_url, server.pid,
                                                       args.memory_dialogues))
            print('memory', results['memory'], flush=True)
    finally:
        server.terminate()
        results['exit_status'] = server.wait(timeout=60)
    results['load_after'] = os.getloadavg()
    for kind in ('predict', 'stream'):
        base = results[kind].get(1, {}).get('utt_per_s')
        for level in results[kind].values():
            level['ratio'] = round(level['utt_per_s'] / base, 2) if base else None
    results['targets'] = {
        'ratio_64': results['predict'].get(64, {}).get('ratio'),
        'stream_p99_ms_64': results['stream_paced'].get(64, {}).get('p99_ms'),
        'stream_p99_ms_64_saturated': results['stream'].get(64, {}).get('p99_ms'),
        'memory_growth_mb': (results.get('memory') or {}).get('growth_mb')}
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    print(json.dumps(results['targets']))
    return results


if __name__ == '__main__':
    main()

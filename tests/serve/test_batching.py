"""The micro-batcher: jobs gathered into batches of at most max_batch, every caller gets its
own result, a full queue refuses, a failing batch fails its callers only."""
import asyncio
import threading

import pytest

from dsgdn_pyg.serve.batching import MicroBatcher, QueueFull


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_jobs_share_batches_and_keep_their_results():
    seen, threads = [], set()

    def run_batch(jobs, deliver):
        seen.append(list(jobs))
        threads.add(threading.get_ident())
        return [job * 10 for job in jobs]

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=4, max_wait_ms=50, max_queue=100)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(k) for k in range(10)))
        await batcher.stop()
        return results, batcher.batches

    results, batches = run(main())
    assert results == [k * 10 for k in range(10)]
    assert [len(jobs) for jobs in seen] == [4, 4, 2] and batches == 3
    assert sorted(job for jobs in seen for job in jobs) == list(range(10))
    # One worker thread, not the event loop's.
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_sizes_bound_a_batch_and_a_large_job_runs_alone():
    seen = []

    def run_batch(jobs, deliver):
        seen.append([size for size in jobs])
        return jobs

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=5, max_wait_ms=50, max_queue=100,
                               size=lambda job: job)
        batcher.start()
        await asyncio.gather(*(batcher.submit(size) for size in (2, 2, 2, 9, 1)))
        await batcher.stop()

    run(main())
    assert seen == [[2, 2], [2], [9], [1]]


def test_a_full_queue_refuses_and_errors_reach_their_callers():
    def run_batch(jobs, deliver):
        return [ValueError(f'bad {job}') if job < 0 else job for job in jobs]

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=8, max_wait_ms=1, max_queue=2)
        futures = [batcher.submit(1), batcher.submit(-1)]  # not started: they wait
        with pytest.raises(QueueFull):
            batcher.submit(2)
        forced = batcher.submit(3, force=True)  # work that frees memory is never refused
        batcher.start()
        results = await asyncio.gather(*futures, forced, return_exceptions=True)
        await batcher.stop()
        return results

    good, bad, forced = run(main())
    assert good == 1 and forced == 3
    assert isinstance(bad, ValueError) and str(bad) == 'bad -1'


def test_a_result_delivered_early_reaches_its_caller_before_the_batch_ends():
    release = threading.Event()

    def run_batch(jobs, deliver):
        deliver(0, 'early')
        assert release.wait(10), 'the early result was not delivered'
        return ['late', 'second']

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=8, max_wait_ms=1, max_queue=8)
        first, second = batcher.submit('a'), batcher.submit('b')
        batcher.start()
        assert await first == 'early' and not second.done()
        release.set()
        result = await second
        await batcher.stop()
        return result

    assert run(main()) == 'second'

import json

from benchmarks import attention_scaling as scaling


def test_worker_runs_the_job_of_its_command_line(capsys):
    # The measuring process gets its case and settings through worker_command's JSON and
    # prints its result as the JSON line run_in_subprocess reads (here run in this process).
    case = scaling.Case('L=6', (6, ))
    for impl in ('sparse', None):
        command = scaling.worker_command(case, repeats=2, warmup=1, impl=impl)
        assert command[1:4] == ['-m', 'benchmarks.attention_scaling', '--worker']
        scaling._worker_main(command[4])
        result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert result['case'] == 'L=6' and result['repeats'] == 2
        if impl is None:  # interleaved: every implementation, two steps each
            assert {k: len(v) for k, v in result['times_s'].items()} == {
                name: 2 for name in scaling.IMPLEMENTATIONS}
        else:
            assert result['impl'] == 'sparse' and result['num_nodes'] == 6

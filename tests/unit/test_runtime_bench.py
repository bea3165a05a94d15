"""Step 9's command line per pinned version, and its figures from --output-json or the printed line."""

from __future__ import annotations

import json

from pytest_flmigrate.steps import benchmark


def test_flags_for_a_pin_without_random_lengths(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "throughput.py").write_text('parser.add_argument("--input-len")\n')
    assert not benchmark.uses_random_lengths(tmp_path)
    argv = benchmark.command(
        "/env/bin/python",
        "/ckpt",
        tp=2,
        random_lengths=False,
        output_json=tmp_path / "b.json",
        extra=("--dtype", "float32"),
    )
    assert argv[:5] == ["/env/bin/python", "-m", "vllm.entrypoints.cli.main", "bench", "throughput"]
    joined = " ".join(argv)
    assert "--load-format dummy --dataset-name random --input-len 128 --output-len 128 --num-prompts 2" in joined
    assert "--tensor-parallel-size 2" in joined and argv[-2:] == ["--dtype", "float32"]


def test_flags_for_a_pin_that_reads_random_lengths(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "throughput.py").write_text('d["random_input_len"] = args.input_len\n')
    assert benchmark.uses_random_lengths(tmp_path)
    argv = benchmark.command("python", "m", tp=1, random_lengths=True, output_json=tmp_path / "b.json")
    assert "--random-input-len 128 --random-output-len 128" in " ".join(argv) and "--input-len" not in argv
    assert not benchmark.uses_random_lengths(None)


def test_parse_prefers_the_json_file(tmp_path):
    out = tmp_path / "b.json"
    out.write_text(
        json.dumps(
            {
                "elapsed_time": 21.2,
                "num_requests": 2,
                "total_num_tokens": 513,
                "requests_per_second": 0.0944,
                "tokens_per_second": 24.2,
            }
        )
    )
    data = benchmark.parse(out, "Throughput: 0.09 requests/s, 24.22 total tokens/s, 12.08 output tokens/s\n")
    assert data["requests_per_second"] == 0.0944 and data["elapsed_time"] == 21.2
    assert data["output_tokens_per_second"] == 12.08


def test_parse_falls_back_to_the_printed_line(tmp_path):
    data = benchmark.parse(
        tmp_path / "missing.json", "noise\nThroughput: 1.50 requests/s, 384.00 total tokens/s, 192.00 output tokens/s\n"
    )
    assert (data["requests_per_second"], data["tokens_per_second"]) == (1.5, 384.0)

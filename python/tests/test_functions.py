"""speclight.solve / tune / deploy / certificate against the CLI's --json on
the same input: the dicts must equal what `speclight SUBCOMMAND --json`
prints (floats to 1e-9 relative: Python passes log-probabilities, the CLI
probabilities). The CLI binary is target/{debug,release}/speclight (built by
`cargo test`, which scripts/test runs first) or $SPECLIGHT_BIN."""

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import speclight

ROOT = Path(__file__).resolve().parents[2]
LATENCY = ROOT / "data" / "latency-example.csv"
VECTOR = [0.634, 0.108, 0.057, 0.034, 0.023, 0.016, 0.012, 0.009, 0.007, 0.005]
DIST = [0.5, 0.3, 0.2]


def cli_binary():
    for candidate in (
        os.environ.get("SPECLIGHT_BIN"),
        ROOT / "target" / "debug" / "speclight",
        ROOT / "target" / "release" / "speclight",
    ):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.skip("no speclight binary: run cargo build (or set SPECLIGHT_BIN)")


def cli_json(*args, ok_codes=(0,)):
    run = subprocess.run([cli_binary(), *map(str, args)], capture_output=True, text=True)
    assert run.returncode in ok_codes, run.stderr
    return json.loads(run.stdout)


def spec(probs):
    return ",".join(repr(p) for p in probs)


def assert_same(ours, theirs, where="$"):
    """Equal structure and keys, equal ints/strings/bools, floats to 1e-9."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        assert list(ours) == list(theirs), where
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{where}.{k}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(ours, bool):
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), where
    else:
        assert ours == theirs and type(ours) is type(theirs), where


@pytest.mark.parametrize("server", ["vllm", "sglang", "trtllm", "medusa", "eagle"])
@pytest.mark.parametrize("capacity", [8, 32])
def test_deploy_equals_cli(server, capacity):
    ours = speclight.deploy(server, np.log(VECTOR), capacity=capacity)
    theirs = cli_json("deploy", "--server", server, "--dist", spec(VECTOR), "--capacity", capacity, "--json")
    assert_same(ours, theirs)
    assert ours["server"] == server and ours["capacity"] == capacity


def test_deploy_vllm_issue_figure():
    # docs/deploy.md: the issue's vector loses 5.6% to vLLM's constraint at P = 8.
    d = speclight.deploy("vllm", np.log(VECTOR), capacity=8)
    assert round(100 * d["constraint_cost"], 1) == 5.6
    tree = speclight.Tree.from_medusa_choices(eval(d["config"]["speculative_token_tree"]))
    assert tree.to_vllm() == d["config"]["speculative_token_tree"]


def test_deploy_by_speed_with_latency_arrays_equals_the_file():
    tokens, seconds = np.loadtxt(LATENCY, delimiter=",", skiprows=1, unpack=True)
    by_file = speclight.deploy("sglang", np.log(VECTOR), latency=str(LATENCY), draft_step=0.002)
    by_arrays = speclight.deploy("sglang", np.log(VECTOR), latency=(tokens.astype(np.int64), seconds), draft_step=0.002)
    theirs = cli_json("deploy", "--server", "sglang", "--dist", spec(VECTOR), "--latency", LATENCY, "--draft-step", 0.002, "--json")
    assert_same(by_file, theirs)
    assert_same(by_arrays, theirs)
    assert "tokens_per_second" in theirs


def test_solve_equals_cli():
    ours = speclight.solve(np.log(VECTOR), str(LATENCY), draft_step=0.002, max_depth=6)
    theirs = cli_json("solve", "--dist", spec(VECTOR), "--latency", LATENCY, "--draft-step", 0.002, "--max-depth", 6, "--json")
    assert_same(ours, theirs)
    assert ours["best"]["tokens_per_second"] <= ours["speed_of_light"]["tokens_per_second"] + 1e-9


def test_solve_with_a_verifier_equals_cli():
    verifier = [0.4, 0.35, 0.25]
    ours = speclight.solve(np.log(DIST), str(LATENCY), draft_step=0.001, max_depth=4, max_capacity=64,
                           verifier_logprobs=np.log(verifier))
    theirs = cli_json("solve", "--dist", spec(DIST), "--verifier", spec(verifier), "--latency", LATENCY,
                      "--draft-step", 0.001, "--max-depth", 4, "--max-capacity", 64, "--json")
    assert_same(ours, theirs)


@pytest.mark.parametrize("probs,capacity,max_depth", [(DIST, 64, None), (DIST, 40, 3), ([1.0], 4, None)])
def test_certificate_equals_bound_cli(probs, capacity, max_depth):
    ours = speclight.certificate(np.log(probs), capacity, max_depth=max_depth)
    args = ["bound", "--dist", spec(probs), "--capacity", capacity, "--json"]
    if max_depth is not None:
        args += ["--max-depth", max_depth]
    theirs = cli_json(*args)
    assert_same(ours, theirs)
    assert ours["certified"] is True
    assert ("note" in ours) == (len(probs) == 1)  # entropy 0: no finite closed form


def test_certificate_of_a_tree_equals_check_cli(tmp_path):
    tree = speclight.build(np.log([0.6, 0.25, 0.15]), capacity=20)
    ours = speclight.certificate(np.log(DIST), 20, tree=tree, drafter_logprobs=np.log([0.6, 0.25, 0.15]))
    path = tmp_path / "tree.json"
    path.write_text(cli_tree_json(tree))
    theirs = cli_json("check", "--tree", path, "--verifier", spec(DIST), "--drafter", "0.6,0.25,0.15",
                      "--capacity", 20, "--json")
    assert_same(ours, theirs)
    assert ours["optimality"]["optimal"] is True
    # Not best-first for this verifier-as-drafter: the CLI exits 4, the dict says so.
    ours = speclight.certificate(np.log([0.2, 0.3, 0.5]), 20, tree=tree)
    theirs = cli_json("check", "--tree", path, "--verifier", "0.2,0.3,0.5", "--capacity", 20, "--json", ok_codes=(4,))
    assert_same(ours, theirs)
    assert ours["optimality"]["optimal"] is False and ours["gap_to_opt"] > 0


def cli_tree_json(tree):
    """The tree in the JSON schema `speclight check --tree` reads, written by
    the CLI itself from the same Medusa rank paths (token = rank)."""
    run = subprocess.run(
        [cli_binary(), "convert", "--from", "medusa", "--to", "json", "/dev/stdin"],
        input=json.dumps(tree.rank_paths()), capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def paired_trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "pairs.jsonl"
    run = subprocess.run(
        [cli_binary(), "pair-trace", "--train-prompts", "8", "--heldout-prompts", "4",
         "--positions", "64", "--depth", "4", "--top-k", "6", "--out", str(path)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    return path


def test_tune_equals_cli(paired_trace):
    ours = speclight.tune(str(paired_trace), capacities=[2, 8, 16], heldout_from_seq=8)
    theirs = cli_json("tune", "--trace", paired_trace, "--capacities", "2,8,16", "--heldout-from-seq", 8, "--json")
    assert_same(ours, theirs)
    assert [d["server"] for d in ours["deploy"]] == ["vllm", "sglang", "trtllm", "medusa", "eagle"]


def test_tune_with_latency_equals_cli(paired_trace):
    ours = speclight.tune(paired_trace, capacities=[4, 16], heldout_from_seq=8, latency=str(LATENCY), draft_step=0.002)
    theirs = cli_json("tune", "--trace", paired_trace, "--capacities", "4,16", "--heldout-from-seq", 8,
                      "--latency", LATENCY, "--draft-step", 0.002, "--json")
    assert_same(ours, theirs)
    assert ours["capacity_choice"] is not None


def test_deploy_from_a_tune_report_equals_cli(paired_trace, tmp_path):
    report = speclight.tune(str(paired_trace), capacities=[8], heldout_from_seq=8)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    ours = speclight.deploy("vllm", report=str(path), capacity=8)
    theirs = cli_json("deploy", "--server", "vllm", "--report", path, "--capacity", 8, "--json")
    assert_same(ours, theirs)


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda: speclight.deploy("tgi", np.log(VECTOR), capacity=8), "tgi"),
        (lambda: speclight.deploy("vllm", np.log(VECTOR)), "capacity"),
        (lambda: speclight.deploy("vllm", capacity=8), "logprobs or report"),
        (lambda: speclight.deploy("medusa", np.log([0.5, 0.3]), capacity=7, max_depth=2), "fills capacity 7"),
        (lambda: speclight.deploy("vllm", np.log(VECTOR), latency=str(LATENCY)), "together"),
        (lambda: speclight.solve(np.log(DIST), ([0, 4, 2], [0.1, 0.1, 0.1]), draft_step=0.001), "increase"),
        (lambda: speclight.solve(np.log(DIST), ([0, 4], [0.1]), draft_step=0.001), "2 token counts but 1"),
        (lambda: speclight.solve(np.log(DIST), "/nonexistent.csv", draft_step=0.001), "nonexistent"),
        (lambda: speclight.solve(np.log(DIST), 3.5, draft_step=0.001), "file path or a tuple"),
        (lambda: speclight.solve(np.log(DIST), str(LATENCY)), "draft_step"),
        (lambda: speclight.certificate(np.log(DIST), 0), "capacity must be at least 1"),
        (lambda: speclight.tune("/nonexistent.jsonl"), "cannot open"),
    ],
)
def test_bad_input_raises_value_error(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()

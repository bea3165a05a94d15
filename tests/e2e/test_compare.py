"""MATCH, near-tie, early and late divergence, token-string fallback, one side stopping early."""

from __future__ import annotations

import pytest

from pytest_flmigrate.e2e.compare import DIVERGED, MATCH, NEAR_TIE, POOLED_TOLERANCE, compare, compare_pooled
from pytest_flmigrate.e2e.generation import Generation
from pytest_flmigrate.errors import FlmigrateError


def gen(
    words: list[str],
    *,
    ids: bool = True,
    top: dict[int, list[str]] | None = None,
    finish: str = "length",
    prompt_ids: list[int] | None = None,
) -> Generation:
    """A generation whose token id is derived from the word; ``top`` adds runners-up per position."""
    extra = top or {}
    return Generation(
        model="m",
        text="".join(words),
        token_ids=[sum(map(ord, w)) for w in words] if ids else None,
        tokens=list(words),
        top_logprobs=[
            {w: -0.1, **{alt: -1.0 - i for i, alt in enumerate(extra.get(p, []))}} for p, w in enumerate(words)
        ],
        finish_reason=finish,
        prompt_token_ids=prompt_ids,
    )


WORDS = [f" w{i}" for i in range(40)]


def swapped(position: int, word: str) -> list[str]:
    out = list(WORDS)
    out[position] = word
    return out


def test_identical_first_tokens_match():
    result = compare("t1", gen(WORDS), gen(WORDS[:32] + [" other"] * 8), 32)
    assert result.verdict == MATCH and result.passed
    assert result.compared == 32 and result.diverge_at is None and result.basis == "token ids"
    assert result.summary() == {
        "verdict": "match",
        "match": True,
        "passed": True,
        "diverge_at": None,
        "divergence": None,
        "tokens_compared": 32,
        "token_match_count": 32,
        "basis": "token ids",
    }
    assert result.headline() == "t1: MATCH, first 32 tokens identical (token ids)"


def test_both_stopping_at_the_same_length_is_a_match():
    result = compare("t2", gen(WORDS[:7], finish="stop"), gen(WORDS[:7], finish="stop"), 32)
    assert result.verdict == MATCH and result.compared == 7


def test_near_tie_passes_and_records_the_position():
    gt = gen(WORDS, top={12: [" x"]})
    local = gen(swapped(12, " x"), top={12: [WORDS[12]]})
    result = compare("t3", gt, local, 32)
    assert result.verdict == NEAR_TIE and result.passed
    assert result.diverge_at == 12 and result.divergence == "late"
    assert (result.gt_token, result.local_token) == (WORDS[12], " x")
    assert result.summary()["diverge_at"] == 12 and result.summary()["match"] is False
    assert "near-tie at token 12" in result.headline()


def test_an_exact_comparison_fails_a_near_tie_saying_why():
    gt = gen(WORDS, top={12: [" x"]})
    local = gen(swapped(12, " x"), top={12: [WORDS[12]]})
    result = compare("t3", gt, local, 32, exact=True)
    assert result.verdict == DIVERGED and not result.passed and result.diverge_at == 12
    assert result.notes == ("a near-tie, but these tokens must be identical (speculative decoding is lossless)",)
    assert compare("t1", gen(WORDS), gen(WORDS), 32, exact=True).verdict == MATCH


def test_tie_must_hold_both_ways():
    gt = gen(WORDS, top={12: [" x"]})  # local's token is GT's runner-up ...
    local = gen(swapped(12, " x"))  # ... but GT's token is not among local's top
    assert compare("t3", gt, local, 32).verdict == DIVERGED


def test_early_divergence_fails_with_both_sequences_position_and_texts():
    result = compare("t4", gen(WORDS), gen(swapped(2, " wrong")), 32)
    assert result.verdict == DIVERGED and not result.passed
    assert result.diverge_at == 2 and result.divergence == "early"
    report = result.report()
    headline = report.splitlines()[0]
    assert headline.startswith("t4: local diverges from GT at token 2 (0-based) of 32: GT ' w2' vs local ' wrong'")
    assert "early divergence: likely a code bug" in headline
    assert f"GT    token ids: [{sum(map(ord, ' w0'))}, {sum(map(ord, ' w1'))}, >>{sum(map(ord, ' w2'))}<<" in report
    assert f">>{sum(map(ord, ' wrong'))}<<" in report
    assert "GT text:    ' w0 w1 w2" in report and "local text: ' w0 w1 wrong" in report


def test_late_divergence_is_classified_late():
    result = compare("t5", gen(WORDS), gen(swapped(5, " wrong")), 32)
    assert (result.verdict, result.divergence) == (DIVERGED, "late")
    assert "late divergence" in result.headline()
    assert compare("t5", gen(WORDS), gen(swapped(4, " wrong")), 32).divergence == "early"


def test_divergence_after_the_window_is_not_looked_at():
    assert compare("t1", gen(WORDS), gen(swapped(32, " wrong")), 32).verdict == MATCH
    assert compare("t1", gen(WORDS), gen(swapped(31, " wrong")), 32).verdict == DIVERGED


def test_token_strings_are_the_fallback_without_ids():
    result = compare("t1", gen(WORDS, ids=False), gen(WORDS), 16)
    assert result.verdict == MATCH and result.basis == "token strings"
    diverged = compare("t1", gen(WORDS, ids=False), gen(swapped(3, " z"), ids=False), 16)
    assert diverged.diverge_at == 3 and diverged.basis == "token strings"
    assert "GT    token strings: [' w0', ' w1', ' w2', >>' w3'<<" in diverged.report()


def test_neither_ids_nor_strings_is_an_error():
    empty = Generation("m", "", None, [], [])
    with pytest.raises(FlmigrateError, match="the GT result has neither token ids nor token strings"):
        compare("t1", empty, gen(WORDS), 8)


def test_one_side_stopping_inside_the_window_diverges_there():
    result = compare("t2", gen(WORDS[:10], finish="stop"), gen(WORDS), 32)
    assert result.verdict == DIVERGED and result.diverge_at == 10 and result.compared == 32
    assert result.gt_token is None and result.local_token == WORDS[10]
    assert "GT stopped after 10 tokens (finish reasons: GT stop, local length)" in result.report()


def test_different_prompt_tokenization_is_noted():
    result = compare("t1", gen(WORDS, prompt_ids=[1, 2, 3]), gen(swapped(0, " q"), prompt_ids=[1, 5, 3]), 8)
    assert result.notes == (
        "the prompts were tokenized differently (from prompt token 1): "
        "check the chat template and tokenizer the two servers load",
    )
    assert result.summary()["notes"] == list(result.notes)


def pooled(*rows: list[float]) -> Generation:
    return Generation(model="m", text="", token_ids=None, tokens=[], top_logprobs=[], pooled=[list(r) for r in rows])


def test_pooled_vectors_within_the_cosine_tolerance_match():
    gt = pooled([0.3, -0.2, 0.5, 0.1], [0.0, 1.0, 0.0, 0.0])
    local = pooled([0.3001, -0.2, 0.4999, 0.1], [0.0, 1.0, 0.001, 0.0])  # float noise
    result = compare_pooled("t1", gt, local)
    assert result.verdict == MATCH and result.compared == 2 and result.passed
    assert result.headline().startswith("t1: MATCH, 2 pooled vectors within cosine similarity 0.999 of GT's (lowest")
    assert result.summary()["basis"] == "pooled vectors" and "measure" in result.summary()


def test_a_pooled_vector_out_of_tolerance_diverges_there_with_both_shown():
    gt = pooled([0.3, -0.2, 0.5, 0.1], [0.0, 1.0, 0.0, 0.0])
    local = pooled([0.3, -0.2, 0.5, 0.1], [0.0, 1.0, 0.2, 0.0])  # a wrong weight: cosine 0.98
    result = compare_pooled("t2", gt, local)
    assert result.verdict == DIVERGED and result.diverge_at == 1 and not result.passed
    assert 1 - 0.02 < float(result.measure.split()[-1]) < 1 - POOLED_TOLERANCE
    report = result.report()
    assert report.splitlines()[0].startswith("t2: local's pooled output differs from GT's at vector 1 (0-based) of 2")
    assert (
        "GT    vector 1 starts [0.0, 1.0, 0.0, 0.0]" in report
        and "local vector 1 starts [0.0, 1.0, 0.2, 0.0]" in report
    )


def test_pooled_outputs_of_another_shape_diverge_naming_it():
    longer = compare_pooled("t3", pooled([1.0, 0.0]), pooled([1.0, 0.0, 0.0]))
    assert longer.verdict == DIVERGED and longer.measure == "3 values where GT has 2"
    more = compare_pooled("t3", pooled([1.0, 0.0]), pooled([1.0, 0.0], [0.5, 0.5]))
    assert more.verdict == DIVERGED and more.diverge_at == 1 and more.measure.startswith("2 vectors where GT has 1")


def test_a_result_without_vectors_cannot_be_compared_as_pooled():
    with pytest.raises(FlmigrateError, match="the local result of t1 holds no pooled vectors; collect it again"):
        compare_pooled("t1", pooled([1.0]), Generation("m", "x", [1], ["x"], [{}]))


def test_pooled_vectors_survive_saving():
    original = pooled([0.25, -1.5])
    assert Generation.from_dict(original.to_dict()) == original and original.length == 1

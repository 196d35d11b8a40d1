"""``parse_spec``: constructor calls parsed (never evaluated); every bad spec a one-line named SpecError."""

from __future__ import annotations

import pytest

import jaxsched
from jaxsched import SpecError, parse_spec
from jaxsched._spec import MAX_SPEC_CHARS


def _err(text) -> str:
    with pytest.raises(SpecError) as exc:
        parse_spec(text)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_good_specs_build_equal_schedules():
    assert parse_spec("StepLR(0.1, step_size=30)") == jaxsched.StepLR(0.1, step_size=30)
    assert parse_spec("  MultiStepLR(0.1, milestones=[30, 60], gamma=+0.5)  ") == \
        jaxsched.MultiStepLR(0.1, milestones=[30, 60], gamma=0.5)
    seq = parse_spec("SequentialLR([LinearLR(0.1, start_factor=0.1, total_iters=5), "
                     "CosineAnnealingLR(0.1, T_max=50)], milestones=[5])")
    assert float(seq(0)) == pytest.approx(0.01)


def test_duplicate_keyword_is_refused_as_python_does():
    msg = _err("StepLR(0.1, step_size=3, step_size=50)")
    assert "keyword argument repeated" in msg and "step_size" in msg
    with pytest.raises(SyntaxError):  # what Python itself says about the same call
        compile("StepLR(0.1, step_size=3, step_size=50)", "<spec>", "eval")


@pytest.mark.parametrize("text, kind", [("0.1", "float"), ("[1,2]", "list"), ("(1, 2)", "tuple"), ("'StepLR'", "str"),
                                        ("None", "NoneType"), ("-3", "UnaryOp")])
def test_bare_literals_are_refused(text, kind):
    msg = _err(text)
    assert "not a constructor call" in msg and kind in msg and "StepLR(0.1, step_size=30)" in msg


def test_bare_schedule_name_says_write_a_call():
    msg = _err("StepLR")
    assert "write StepLR(...)" in msg
    assert "Known schedules" not in msg


@pytest.mark.parametrize("text, guess", [("SteLR(0.1, step_size=3)", "StepLR"), ("steplr(0.1, step_size=3)", "StepLR"),
                                         ("OneCycleLr(max_lr=0.1, total_steps=10)", "OneCycleLR"),
                                         ("CosineAnnealingLR(0.1, T_max=SteLR(1))", "StepLR"), ("SteLR", "StepLR")])
def test_misspelt_name_gets_a_suggestion_and_the_list(text, guess):
    msg = _err(text)
    assert f"Did you mean {guess!r}?" in msg
    assert "Known schedules: " in msg and "OneCycleLR" in msg


def test_unknown_name_without_a_close_match_lists_names_only():
    msg = _err("Foo(1)")
    assert "unknown schedule 'Foo'" in msg and "Did you mean" not in msg and "Known schedules: " in msg


@pytest.mark.parametrize("text", ["StepLR(0.1, step_size=0)", "StepLR(lambda e: 1)", "StepLR(0.1, step_size=3",
                                  "StepLR(0.1, step_size=x)", "StepLR(*[0.1])", "StepLR(0.1, **{'step_size': 3})"])
def test_known_names_are_listed_only_when_the_name_is_unknown(text):
    assert "Known schedules" not in _err(text)


def test_misspelt_keyword_gets_a_suggestion():
    assert "Did you mean 'step_size'?" in _err("StepLR(0.1, step_sise=3)")


def test_constructor_errors_are_spec_errors_naming_the_argument():
    msg = _err("SequentialLR([StepLR(0.1, step_size=0)], milestones=[])")
    assert msg.startswith("in schedule spec 'SequentialLR(") and "step_size=0" in msg
    assert msg.count("in schedule spec") == 1


def test_nothing_is_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    for text in [f"StepLR(0.1, step_size=__import__('os').system('touch {marker}'))",
                 f"StepLR(0.1, step_size=open({str(marker)!r}, 'w').write('x'))",
                 "StepLR(0.1, step_size=len('abc'))", "StepLR(0.1, step_size=(3).real)", "StepLR(0.1, step_size=1+2)",
                 "StepLR(0.1, step_size=[x for x in (3,)])", "StepLR(0.1, step_size=(yield))"]:
        _err(text)
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "-" * 9000 + "1",                                   # the parser itself gives up (MemoryError in CPython 3.11)
    "StepLR(0.1, step_size=" + "+".join(["1"] * 3000) + ")",  # RecursionError building the tree
    "StepLR(" + "[" * 150 + "]" * 150 + ")",            # within the parser's limit, deeper than a spec needs
    "StepLR(0.1, step_size=" + "9" * 5000 + ")",        # past Python's int-string limit
    "(" * 300 + ")" * 300,
])
def test_deep_or_huge_expressions_give_a_named_one_line_error(text):
    msg = _err(text)
    assert len(msg) < 600
    assert "RecursionError" not in msg and "MemoryError" not in msg


def test_a_huge_spec_is_refused_and_not_echoed_whole():
    text = "StepLR(0.1, step_size=30)" + " " * (10 * 2**20)
    msg = _err(text)
    assert "too long" in msg and f"{MAX_SPEC_CHARS:,}" in msg and len(msg) < 400
    # a long spec under the limit with an error near its end: the echo is bounded too
    long_list = "MultiStepLR(0.1, milestones=[" + ", ".join(str(i) for i in range(1, 1500)) + "], gamma=x)"
    assert len(long_list) < MAX_SPEC_CHARS
    msg = _err(long_list)
    assert len(msg) < 600 and "..." in msg and f"({len(long_list):,} characters)" in msg


def test_non_string_spec():
    assert "must be a string" in _err(123)  # type: ignore[arg-type]

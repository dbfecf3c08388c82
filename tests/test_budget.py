import pytest

from unlearnable.budget import parse_budget
from unlearnable.errors import BudgetError


@pytest.mark.parametrize("text,value,levels", [("8/255", 8 / 255, 8), ("0.0314", 0.0314, 8), ("16/255", 16 / 255, 16), (" 4 / 255 ", 4 / 255, 4), ("1", 1.0, 255)])
def test_accepts(text, value, levels):
    b = parse_budget(text)
    assert b.value == pytest.approx(value)
    assert b.levels == levels


@pytest.mark.parametrize("text,message", [
    ("0", "greater than 0"), ("-8/255", "greater than 0"), ("1.5", "above 1"), ("abc", "not a number"),
    ("8", "did you mean 8/255?"), ("8/0", "not a number"), ("nan", "not finite"), ("300/255", "above 1"),
])
def test_rejects(text, message):
    with pytest.raises(BudgetError, match=message.replace("?", r"\?")):
        parse_budget(text)


def test_text_is_kept_for_metadata():
    assert parse_budget("8/255").text == "8/255"

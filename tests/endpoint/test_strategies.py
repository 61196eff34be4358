import pytest

from endpoint.core.strategies import Strategy, normalize_strategy, parse_strategy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("top_n:5", Strategy(top_n=5)),
        ("uids:1,2", Strategy(uids=(1, 2))),
        (" uid:3 ", Strategy(uids=(3,))),
        ("best:3", Strategy(best=3)),
        ("best", Strategy(best=1)),
        ("", None),
    ],
)
def test_strategies_parse(text, expected):
    assert parse_strategy(text) == expected


@pytest.mark.parametrize(
    "text", ["top_n:0", "top_n:x", "uids:", "uids:-1", "uid:1,2", "best:0", "best:x", "fastest:3", "top_n"]
)
def test_malformed_strategies_are_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="strategy"):
        parse_strategy(text)


def test_strategies_are_written_one_way():
    assert normalize_strategy("UIDS: 3, 7") == "uids:3,7"
    assert normalize_strategy("uid:4") == "uids:4"
    assert normalize_strategy("BEST") == "best:1"

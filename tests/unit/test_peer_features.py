"""What a peer takes beyond the base file protocol: asked once, a 404 read as the
release before the hello, any other failure raised and asked again next time."""

from __future__ import annotations

from typing import Any

import pytest

from dataferry.datasets.peercaps import FEATURES, PeerFeatures, features_of, hello
from dataferry.errors import NotFound, PermanentError, TransientError


class Answers:
    """Hands out the given answers in turn (an exception is raised), counting asks."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self) -> Any:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_our_hello_lists_mtime() -> None:
    assert hello() == {"protocol": 1, "features": ["mtime"]}
    assert features_of(hello(), "x") == frozenset(FEATURES)


def test_the_answer_is_kept() -> None:
    ask = Answers({"protocol": 1, "features": ["mtime", "from-the-future"]})
    features = PeerFeatures("home", ask)
    assert features.accepts("mtime") and features.accepts("mtime")
    assert not features.accepts("other")
    assert ask.asked == 1


def test_no_hello_route_is_the_release_before() -> None:
    ask = Answers(NotFound("site 'home' answered: Not Found"))
    features = PeerFeatures("home", ask)
    assert not features.accepts("mtime") and not features.accepts("mtime")
    assert ask.asked == 1


def test_a_failed_hello_is_raised_and_asked_again() -> None:
    ask = Answers(TransientError("site 'home' answered: 503"), {"protocol": 1, "features": []})
    features = PeerFeatures("home", ask)
    with pytest.raises(TransientError):
        features.accepts("mtime")
    assert not features.accepts("mtime") and ask.asked == 2


@pytest.mark.parametrize(
    "doc", [[], {"protocol": 1}, {"features": "mtime"}, {"features": [1]}, "hello", None]
)
def test_a_hello_of_another_shape_is_refused(doc: Any) -> None:
    with pytest.raises(PermanentError, match="peer hello"):
        PeerFeatures("home", Answers(doc)).accepts("mtime")

"""Settings objects: their defaults, derived values, and what they refuse (with the reason)."""

from __future__ import annotations

import pytest

import helpcrunch_async as hc


def test_documented_defaults():
    """The defaults are HelpCrunch's documented limit, and the retry policy the README gives."""
    assert hc.RateLimit(requests=120, per=60.0, burst=10, margin=0.5) == hc.RateLimit()
    assert (
        hc.Retry(backoff=0.5, backoff_max=30.0, retry_after_max=120.0, budget=300.0) == hc.Retry()
    )


@pytest.mark.parametrize(
    ("limit", "window", "burst"),
    [
        (hc.RateLimit(), 60.5, 10),
        (hc.RateLimit(requests=3, per=2.0, burst=10, margin=0.0), 2.0, 3),
        (hc.RateLimit(requests=300, per=60.0, burst=1, margin=1.5), 61.5, 1),
    ],
)
def test_window_and_effective_burst(limit, window, burst):
    """The enforced window is per + margin; the burst never exceeds the requests per window."""
    assert window == limit.window
    assert burst == limit.effective_burst


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: hc.RateLimit(requests=0), ValueError, "requests must be >= 1, got 0"),
        (lambda: hc.RateLimit(requests=1.5), TypeError, "requests must be an int, not float"),  # type: ignore[arg-type]
        (lambda: hc.RateLimit(requests=True), TypeError, "requests must be an int, not bool"),
        (lambda: hc.RateLimit(burst=0), ValueError, "burst must be >= 1, got 0"),
        (
            lambda: hc.RateLimit(per=0),
            ValueError,
            "per must be a positive finite number, got 0",
        ),
        (
            lambda: hc.RateLimit(per=float("inf")),
            ValueError,
            "per must be a positive finite number, got inf",
        ),
        (lambda: hc.RateLimit(per="60"), TypeError, "per must be a number, not str"),  # type: ignore[arg-type]
        (lambda: hc.RateLimit(per=True), TypeError, "per must be a number, not bool"),
        (
            lambda: hc.RateLimit(margin=-1),
            ValueError,
            "margin must be a finite number >= 0, got -1",
        ),
        (
            lambda: hc.RateLimit(margin=float("nan")),
            ValueError,
            "margin must be a finite number >= 0, got nan",
        ),
        (lambda: hc.RateLimit(margin=None), TypeError, "margin must be a number, not NoneType"),  # type: ignore[arg-type]
        (lambda: hc.Retry(backoff=True), TypeError, "backoff must be a number, not bool"),
        (
            lambda: hc.Retry(budget=-0.5),
            ValueError,
            "budget must be a finite number >= 0, got -0.5",
        ),
    ],
)
def test_bad_settings_are_refused_with_the_reason(make, error, message):
    """Each bad number is refused at construction, naming the setting, the rule and the value."""
    with pytest.raises(error) as info:
        make()

    assert message == str(info.value)


@pytest.mark.parametrize(
    ("settings", "name", "value"),
    [
        (hc.RateLimit, "margin", 0),
        (hc.RateLimit, "per", 0.001),
        (hc.RateLimit, "requests", 1),
        (hc.Retry, "backoff", 0),
        (hc.Retry, "budget", 0.0),
    ],
)
def test_edge_values_are_accepted(settings, name, value):
    """Zero where zero makes sense (no margin, no backoff), and the smallest positive values."""
    assert value == getattr(settings(**{name: value}), name)

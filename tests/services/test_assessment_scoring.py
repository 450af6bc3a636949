"""Scoring the shipped instruments, by hand: PHQ-9 bands at their edges, the item 9 safety
rule, the PHQ-2 step to a PHQ-9, response and remission against the baseline, and the
social-needs domains of the AHC HRSN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fhirbridge.config import PROJECT_ROOT
from fhirbridge.domain.assessment import (
    AssessmentResponse,
    FollowUpAction,
    Instrument,
    check_answers,
    score,
    score_history,
)
from fhirbridge.mapping.instruments import Instruments, load_instruments

NOT_AT_ALL, SEVERAL_DAYS, MORE_THAN_HALF, NEARLY_EVERY_DAY = (
    "LA6568-5",
    "LA6569-3",
    "LA6570-1",
    "LA6571-9",
)
BY_SCORE = [NOT_AT_ALL, SEVERAL_DAYS, MORE_THAN_HALF, NEARLY_EVERY_DAY]
ITEM_9 = "44260-8"


@pytest.fixture(scope="module")
def instruments() -> Instruments:
    return load_instruments(PROJECT_ROOT / "mappings")


@pytest.fixture(scope="module")
def phq9(instruments: Instruments) -> Instrument:
    found = instruments.get("phq-9")
    assert found is not None
    return found


def answers_totalling(instrument: Instrument, total: int, *, item_9: int = 0) -> dict[str, str]:
    """Item 9 as given, the rest filled from the first item on (3 each) up to ``total``."""
    left = total - item_9
    out = {}
    for item in instrument.items:
        if item.link_id == ITEM_9:
            out[item.link_id] = BY_SCORE[item_9]
            continue
        given = min(3, left)
        left -= given
        out[item.link_id] = BY_SCORE[given]
    assert left == 0
    return out


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_total_falls_in_its_band_at_the_edges(phq9: Instrument, total: int, band: str) -> None:
    scored = score(phq9, answers_totalling(phq9, total, item_9=3 if total == 27 else 0))

    assert (scored.total, scored.band) == (total, band)


def test_phq9_item_9_above_zero_triggers_an_urgent_same_day_task_whatever_the_total(
    phq9: Instrument,
) -> None:
    scored = score(phq9, answers_totalling(phq9, 3, item_9=1))

    assert (scored.total, scored.band) == (3, "minimal")
    [rule] = scored.follow_ups
    assert rule.action is FollowUpAction.TASK
    assert (rule.task_kind, rule.priority, rule.due_days) == ("follow-up", "urgent", 0)


def test_phq9_item_9_at_zero_triggers_nothing(phq9: Instrument) -> None:
    assert score(phq9, answers_totalling(phq9, 20)).follow_ups == ()


@pytest.mark.parametrize(("first", "second", "proposed"), [(2, 1, True), (1, 1, False)])
def test_phq2_of_three_proposes_a_phq9_and_two_does_not(
    instruments: Instruments, first: int, second: int, proposed: bool
) -> None:
    phq2 = instruments.get("phq-2")
    assert phq2 is not None

    scored = score(phq2, {"44250-9": BY_SCORE[first], "44255-8": BY_SCORE[second]})

    assert scored.total == first + second
    fired = [(r.action, r.instrument) for r in scored.follow_ups]
    assert fired == ([(FollowUpAction.PROPOSE_INSTRUMENT, "phq-9")] if proposed else [])


def test_gad7_bands(instruments: Instruments) -> None:
    gad7 = instruments.get("gad-7")
    assert gad7 is not None
    assert [gad7.band_of(t) for t in (4, 5, 9, 10, 14, 15, 21)] == [
        "minimal",
        "mild",
        "mild",
        "moderate",
        "moderate",
        "severe",
        "severe",
    ]


def _response(phq9: Instrument, total: int, day: int) -> AssessmentResponse:
    return AssessmentResponse(
        id=f"a{day:02d}",
        patient_id="p",
        questionnaire=phq9.questionnaire,
        authored=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day),
        total=total,
        band=phq9.band_of(total),
    )


def test_a_drop_of_exactly_half_from_baseline_is_a_response(phq9: Instrument) -> None:
    history = score_history(phq9, [_response(phq9, 10, 31), _response(phq9, 20, 0)])

    baseline, later = history
    assert (baseline.total, baseline.baseline, baseline.response) == (20, True, False)
    assert (later.total, later.change_percent, later.response) == (10, Decimal("50.0"), True)


def test_a_drop_just_under_half_is_no_response(phq9: Instrument) -> None:
    history = score_history(phq9, [_response(phq9, 20, 0), _response(phq9, 11, 31)])

    assert [p.response for p in history] == [False, False]
    assert history[1].change_percent == Decimal("45.0")


def test_remission_is_a_total_under_five(phq9: Instrument) -> None:
    history = score_history(
        phq9, [_response(phq9, 18, 0), _response(phq9, 5, 30), _response(phq9, 4, 60)]
    )

    assert [(p.total, p.remission) for p in history] == [(18, False), (5, False), (4, True)]
    assert [p.response for p in history] == [False, True, True]


def test_the_baseline_is_the_first_response_whatever_the_order_given(phq9: Instrument) -> None:
    history = score_history(phq9, [_response(phq9, 8, 90), _response(phq9, 16, 0)])

    assert [p.baseline for p in history] == [True, False]
    assert history[1].response is True


HRSN_NEGATIVE = {
    "71802-3": "LA31993-1",
    "88122-7": "LA28398-8",
    "88123-5": "LA28398-8",
    "93030-5": "LA32-8",
    "96779-4": "LA32-8",
    "95618-5": "LA6270-8",
    "95617-7": "LA6270-8",
    "95616-9": "LA6270-8",
    "95615-1": "LA6270-8",
}


def test_hrsn_food_worry_sometimes_true_is_a_positive_food_domain_with_a_referral(
    instruments: Instruments,
) -> None:
    hrsn = instruments.get("ahc-hrsn")
    assert hrsn is not None

    scored = score(hrsn, {**HRSN_NEGATIVE, "88122-7": "LA6729-3"})

    assert scored.total is None
    assert scored.positive_domains == ("food",)
    assert scored.positive_link_ids == ("88122-7",)
    [rule] = scored.follow_ups
    assert (rule.action, rule.referral_kind) == (FollowUpAction.PROPOSE_REFERRAL, "food")


def test_hrsn_all_negative_is_no_domain(instruments: Instruments) -> None:
    hrsn = instruments.get("ahc-hrsn")
    assert hrsn is not None

    scored = score(hrsn, HRSN_NEGATIVE)

    assert (scored.positive_domains, scored.follow_ups) == ((), ())


@pytest.mark.parametrize(("each", "positive"), [("LA10082-8", True), ("LA10066-1", False)])
def test_hrsn_safety_is_positive_from_eleven_points_over_the_four_items(
    instruments: Instruments, each: str, positive: bool
) -> None:
    hrsn = instruments.get("ahc-hrsn")
    assert hrsn is not None
    safety = {link: each for link in ("95618-5", "95617-7", "95616-9", "95615-1")}

    scored = score(hrsn, {**HRSN_NEGATIVE, **safety})  # 4 x 3 = 12 or 4 x 2 = 8

    assert ("interpersonal-safety" in scored.positive_domains) is positive


def test_answers_are_checked_item_by_item(phq9: Instrument) -> None:
    answers = answers_totalling(phq9, 0)
    del answers["44250-9"]
    answers["44255-8"] = "LA33-6"
    answers["99999-9"] = NOT_AT_ALL

    problems = {(p.link_id, p.reason) for p in check_answers(phq9, answers)}

    assert problems == {
        ("99999-9", "not an item of phq-9"),
        ("44250-9", "required item not answered"),
        ("44255-8", "'LA33-6' is not an answer (LA6568-5, LA6569-3, LA6570-1, LA6571-9)"),
    }

"""serving.request_scoring: the validation and risk bands under the bulk endpoint, without a server."""

from __future__ import annotations

import pandas as pd
import pytest

from ecom_assets.ml.feature_specs import CART_FEATURES, names
from ecom_assets_tests.cart_sessions import SESSION


def test_validate_frame_fills_documented_defaults_and_passes_ids_through():
    from ecom_assets.serving.request_scoring import defaulted_fields, validate_frame

    frame = pd.DataFrame(
        [
            {**SESSION, "session_id": "x", "previous_cart_sessions": None},
            {**SESSION, "session_id": "y", "previous_cart_sessions": 3, "experiment_group": " control "},
        ]
    )
    features, extras = validate_frame(frame)
    assert extras == ["session_id"] and list(features.columns) == names(CART_FEATURES)
    defaults = {s.name: s.default for s in CART_FEATURES if not s.required}
    assert features["previous_cart_sessions"].tolist() == [defaults["previous_cart_sessions"], 3]
    assert defaulted_fields(frame).tolist() == [
        "previous_cart_sessions;hour_of_day;day_of_week",
        "hour_of_day;day_of_week",
    ]
    assert features["hour_of_day"].tolist() == [defaults["hour_of_day"]] * 2
    assert features["experiment_group"].tolist() == ["treatment", "control"]


def test_validate_frame_names_every_bad_column_with_rows():
    from ecom_assets.serving.request_scoring import InvalidInput, validate_frame

    frame = pd.DataFrame([SESSION] * 8)
    frame.loc[[1, 3, 4, 5, 6, 7], "views_before_cart"] = -1
    frame.loc[2, "day_of_week"] = 9
    frame.loc[0, "minutes_to_first_cart"] = float("inf")
    with pytest.raises(InvalidInput) as refused:
        validate_frame(frame)
    message = refused.value.message
    assert "views_before_cart: must be >= 0, got -1 in rows 2, 4, 5, 6, 7 (+1 more)" in message
    assert "day_of_week: must be <= 7, got 9 in row 3" in message
    assert "minutes_to_first_cart: must be finite" in message
    with pytest.raises(InvalidInput) as too_many:
        validate_frame(pd.DataFrame([SESSION] * 3), max_rows=2)
    assert too_many.value.status_code == 413


def test_risk_bands_agree_one_by_one_and_vectorised():
    import numpy as np

    from ecom_assets.serving.request_scoring import HIGH_RISK_FROM, LOW_RISK_BELOW, RiskBands, risk_band, risk_bands

    p = np.array([0.0, LOW_RISK_BELOW - 1e-9, LOW_RISK_BELOW, HIGH_RISK_FROM - 1e-9, HIGH_RISK_FROM, 1.0])
    assert risk_bands(p).tolist() == [risk_band(x) for x in p] == ["low", "low", "medium", "medium", "high", "high"]
    bands = RiskBands(0.379, 0.71)
    assert bands.bands(p).tolist() == [bands.band(x) for x in p]


@pytest.mark.parametrize("threshold", [0.05, 0.379, 0.4, 0.5, 0.9, 0.999])
def test_low_risk_is_exactly_not_will_abandon_for_every_probability(threshold):
    import numpy as np

    from ecom_assets.ml.tracking import risk_high_edge
    from ecom_assets.serving.request_scoring import RiskBands

    grid = np.unique(np.concatenate([np.linspace(0, 1, 10_001), [threshold, np.nextafter(threshold, 0)]]))
    scores = np.random.default_rng(0).beta(2, 3, 5_000)
    for edge in (risk_high_edge(threshold, scores), risk_high_edge(threshold)):
        bands = RiskBands(threshold, edge)
        vectorised = bands.bands(grid)
        assert ((vectorised == "low") == ~(grid >= threshold)).all()
        assert [bands.band(p) for p in grid] == vectorised.tolist()
        assert all((bands.band(p) == "low") == (not bands.will_abandon(p)) for p in grid)
        assert threshold < edge <= 1 and (vectorised == "high").any()


def test_the_high_edge_is_the_training_scores_90th_percentile_above_the_threshold():
    import numpy as np

    from ecom_assets.ml.tracking import risk_high_edge

    scores = np.linspace(0, 1, 1001)
    assert risk_high_edge(0.379, scores) == pytest.approx(0.9)
    assert risk_high_edge(0.95, scores) == pytest.approx(0.975)  # percentile below the threshold: the midpoint
    assert risk_high_edge(0.379) == pytest.approx(0.6895)  # unknown scores
    assert risk_high_edge(0.379, np.array([])) == pytest.approx(0.6895)


def test_counts_and_durations_have_upper_bounds_in_bulk_too():
    from ecom_assets.serving.request_scoring import MAX_COUNT, MAX_SESSION_MINUTES, InvalidInput, validate_frame

    fine = pd.DataFrame([{**SESSION, "previous_sessions": MAX_COUNT, "minutes_to_first_cart": MAX_SESSION_MINUTES}])
    validate_frame(fine)
    absurd = pd.DataFrame([SESSION, {**SESSION, "previous_sessions": 1e40, "minutes_to_first_cart": 10_081}])
    with pytest.raises(InvalidInput) as refused:
        validate_frame(absurd)
    assert "previous_sessions: must be <= 1,000,000, got 1e+40 in row 2" in refused.value.message
    assert "minutes_to_first_cart: must be <= 10,080, got 10,081 in row 2" in refused.value.message


def test_csv_width_is_counted_from_the_header_alone():
    from ecom_assets.serving.request_scoring import InvalidInput, check_csv_width

    # quoted commas and line breaks are inside one name; the data rows are never looked at
    check_csv_width(b'a,"b,c","d\r\ne",f\n' + b",".join([b"1"] * 500) + b"\n", max_columns=4)
    check_csv_width(b"a,b,c,d", max_columns=4)  # a header without a line break
    with pytest.raises(InvalidInput) as refused:
        check_csv_width(b"a,b,c,d,e\n1,2,3,4,5\n", max_columns=4)
    assert refused.value.status_code == 413 and "more than 4 columns" in refused.value.message


def test_a_header_of_millions_of_columns_is_refused_in_milliseconds():
    import time

    from ecom_assets.serving.request_scoring import InvalidInput, check_csv_width

    header = b",".join(b"c%d" % i for i in range(2_000_000)) + b"\n"
    started = time.perf_counter()
    with pytest.raises(InvalidInput):
        check_csv_width(header, max_columns=64)
    assert time.perf_counter() - started < 0.05


def test_json_rows_are_refused_past_the_distinct_key_limit():
    from ecom_assets.serving.request_scoring import InvalidInput, check_row_keys

    keys = len(SESSION)  # the required features
    check_row_keys([SESSION, {**SESSION, "id": 1}], max_columns=keys + 1)
    with pytest.raises(InvalidInput, match=f"row 2 has {keys + 2} keys"):
        check_row_keys([SESSION, {**SESSION, "id": 1, "other": 2}], max_columns=keys + 1)
    with pytest.raises(InvalidInput, match=f"rows 1-2 have more than {keys + 1} distinct keys") as refused:
        check_row_keys([{**SESSION, "a": 1}, {**SESSION, "b": 1}], max_columns=keys + 1)
    assert refused.value.status_code == 413


def test_messages_quote_caller_text_short_and_encodable():
    from ecom_assets.serving.request_scoring import InvalidInput, validate_frame

    frame = pd.DataFrame([{**SESSION, "experiment_group": "x" * 10_000 + "\ud800"}])
    with pytest.raises(InvalidInput) as refused:
        validate_frame(frame)
    message = refused.value.message
    message.encode("utf-8")
    assert len(message) < 300 and "xxx..." in message

"""The growth team's app (`make app`): Streamlit over the published snapshots and the scoring API.

Five tabs: real-time predictor, A/B dashboard, bulk scoring, insights, monitoring. The logic lives
in `app_data` (snapshots, reports) and `api_client` (the API); this file is layout.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from ecom_assets.ecom_home import EcomPaths
from ecom_assets.file_store import PUBLISHED, REPORTS, file_store
from ecom_assets.ml.feature_specs import CART_FEATURES, EXPERIMENT_GROUPS
from ecom_assets.serving import app_data
from ecom_assets.serving.api_client import ApiError, ScoringApi

RISK_STYLE = {"high": st.error, "medium": st.warning, "low": st.success}
RISK_TEXT = {
    "high": "High risk: this cart will probably be abandoned",
    "medium": "Medium risk: worth a nudge",
    "low": "Low risk: this session will probably check out",
}


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_data(show_spinner=False)
def _published(folder: str, name: str, mtime: float) -> pd.DataFrame | None:
    return app_data.read_published(Path(folder), name)  # mtime in the key: a new snapshot is re-read


@st.cache_data(show_spinner="Computing the insights from predicted_purchase.parquet ...")
def _insights(path: str, mtime: float):
    return app_data.insight_tables(Path(path))


def _table(frame: pd.DataFrame) -> None:
    """A table with rates as percentages and money in dollars (the numbers themselves unchanged)."""
    formats = app_data.number_formats(frame.columns)
    config = {c: st.column_config.NumberColumn(format=f) for c, f in formats.items()}
    st.dataframe(frame, hide_index=True, column_config=config)


def funnel_chart(funnel: pd.DataFrame) -> alt.Chart:
    """Grouped bars: stages in funnel order (viewed, carted, purchased), one bar per arm, in percent."""
    stages, arms = [str(s) for s in funnel.index], list(funnel.columns)
    return (
        alt.Chart(app_data.funnel_long(funnel))
        .mark_bar()
        .encode(
            x=alt.X("stage:N", sort=stages, title="Funnel stage", axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("arm:N", sort=arms),
            y=alt.Y("share:Q", title="Share of the arm's sessions", axis=alt.Axis(format="%")),
            color=alt.Color("arm:N", sort=arms, title="Arm"),
            tooltip=[
                alt.Tooltip("stage:N", title="Stage"),
                alt.Tooltip("arm:N", title="Arm"),
                alt.Tooltip("share:Q", title="Share of sessions", format=".2%"),
            ],
        )
    )


def insight_chart(spec: app_data.InsightChart) -> alt.Chart:
    """Bars in the spec's order: top-N lists ranked by value, bands and stages in their own order."""
    value_format = ".1%" if spec.percent else ",.2f"
    value = alt.Axis(format="%") if spec.percent else alt.Axis(format=",")
    category = alt.Axis(labelAngle=0, labelLimit=400, labelOverlap=False)  # every id and band, in full
    measures = list(dict.fromkeys(spec.data["measure"]))
    legend = alt.Legend(orient="top", labelLimit=400) if len(measures) > 1 else None  # one: the axis says it
    encoding = {
        "color": alt.Color("measure:N", sort=measures, title=None, legend=legend),
        "tooltip": [
            alt.Tooltip("category:N", title=spec.category_title),
            alt.Tooltip("measure:N", title="Measure"),
            alt.Tooltip("value:Q", title="Value", format=value_format),
        ],
    }
    if spec.horizontal:
        encoding |= {
            "y": alt.Y("category:N", sort=spec.category_order, title=spec.category_title, axis=category),
            "x": alt.X("value:Q", title=spec.value_title, axis=value),
        }
        if len(measures) > 1:
            encoding["yOffset"] = alt.YOffset("measure:N", sort=measures)
        height = max(200, 24 * len(spec.category_order))
    else:
        encoding |= {
            "x": alt.X("category:N", sort=spec.category_order, title=spec.category_title, axis=category),
            "y": alt.Y("value:Q", title=spec.value_title, axis=value),
        }
        if len(measures) > 1:
            encoding["xOffset"] = alt.XOffset("measure:N", sort=measures)
        height = 320
    return alt.Chart(spec.data, height=height).mark_bar().encode(**encoding)


def predictor_tab(api: ScoringApi) -> None:
    st.subheader("Will this cart be abandoned?")
    left, right = st.columns([1, 2])
    with left:
        session = {
            "views_before_cart": st.slider(
                "Product views before the first add-to-cart", 0, 60, 4, key="views_before_cart"
            ),
            "other_items_viewed": st.slider("Other items looked at before it", 0, 30, 2, key="other_items_viewed"),
            "cart_item_views": st.slider("Views of the carted item before it", 0, 20, 1, key="cart_item_views"),
            "minutes_to_first_cart": st.slider(
                "Minutes from the session's start to the first add-to-cart",
                0.0,
                180.0,
                5.0,
                0.5,
                key="minutes_to_first_cart",
            ),
            "cart_item_price": st.number_input(
                f"Price of the carted item ({app_data.CURRENCY})", min_value=0.0, value=40.0, key="cart_item_price"
            ),
            "experiment_group": st.radio(
                "Checkout experiment arm", EXPERIMENT_GROUPS, horizontal=True, key="experiment_group"
            ),
            "previous_sessions": st.slider("The visitor's earlier sessions", 0, 50, 0, key="previous_sessions"),
            "previous_purchases": st.slider("Purchases in those sessions", 0, 20, 0, key="previous_purchases"),
        }
        with st.expander("More about the session (optional; defaults otherwise)"):
            for spec in app_data.optional_session_features():
                if isinstance(spec.default, float):
                    label = spec.description + (f" ({app_data.CURRENCY})" if app_data.is_money(spec.name) else "")
                    session[spec.name] = st.number_input(label, min_value=0.0, value=spec.default, key=spec.name)
                else:
                    session[spec.name] = int(
                        st.number_input(spec.description, min_value=0, value=int(spec.default), step=1, key=spec.name)
                    )
    with right:
        try:
            result = api.predict(session, plot=True)
        except ApiError as exc:
            st.error(f"No prediction: {exc.message}")
            return
        p, band = result["abandonment_probability"], result["risk_band"]
        st.caption(
            f"Scored at the first add-to-cart: {session['views_before_cart']} views, "
            f"{session['minutes_to_first_cart']:g} minutes in, {session['previous_purchases']} earlier purchases, "
            f"{session['experiment_group']} arm"
            + (f"; defaulted: {', '.join(result['defaulted_fields'])}" if result.get("defaulted_fields") else "")
        )
        st.metric(
            "Abandonment probability",
            f"{p:.1%}",
            help=f"model {result['model']['name']} v{result['model']['version']}; decision threshold "
            f"{result['threshold']:.2f}",
        )
        RISK_STYLE[band](f"**{RISK_TEXT[band]}** ({band} risk, model v{result['model']['version']})")
        if result.get("plot_png"):
            st.image(result["plot_png"], caption="Why: each feature's push from the average session (log-odds)")
        with st.expander("Contributions as a table"):
            table = pd.DataFrame(result["contributions"])
            st.dataframe(table.assign(value=table["value"].astype(str)), hide_index=True)  # numbers and words


def ab_tab(published: Path, shown: str) -> None:
    st.subheader("Checkout experiment")
    results = _published(str(published), app_data.AB_RESULTS, _mtime(published / app_data.AB_RESULTS))
    by_arm = _published(str(published), app_data.AB_SESSIONS_BY_ARM, _mtime(published / app_data.AB_SESSIONS_BY_ARM))
    if results is None or by_arm is None:
        st.info(f"No A/B results published yet in {shown}: run `make demo` (or the experiment assets in `make dev`).")
        return
    names = app_data.experiments(results, by_arm)
    experiment = st.selectbox("Experiment", names, key="ab_experiment") if len(names) > 1 else names[0]
    verdict, mismatch = app_data.ab_verdict(results, experiment)
    (st.error if mismatch else st.success)(f"**Verdict.** {verdict}")
    comparisons = app_data.ab_comparisons(results, experiment)
    cols = st.columns(4)
    if "conversion_rate" in comparisons:
        c = comparisons["conversion_rate"]
        cols[0].metric("Conversion, control", f"{c.control:.2%}")
        cols[1].metric("Conversion, treatment", f"{c.treatment:.2%}", f"{c.absolute_lift * 100:+.2f} pp")
    if "revenue_per_user" in comparisons:
        r = comparisons["revenue_per_user"]
        money = f"in {app_data.CURRENCY}, the REES46 prices"
        cols[2].metric("Revenue per user, control", app_data.usd(r.control), help=money)
        cols[3].metric(
            "Revenue per user, treatment",
            app_data.usd(r.treatment),
            app_data.usd(r.absolute_lift, signed=True),
            help=money,
        )
    sessions = by_arm[by_arm["experiment"] == experiment] if "experiment" in by_arm else by_arm
    if len(sessions):
        st.markdown("**Funnel by arm** (share of sessions reaching each stage)")
        st.altair_chart(funnel_chart(app_data.session_funnel_by_arm(sessions)), key="ab_funnel")
        _table(sessions)
    else:
        st.caption(f"No session funnel is published for {experiment}.")
    with st.expander("All test statistics"):
        st.dataframe(results[results["experiment"] == experiment].drop(columns=["verdict"]), hide_index=True)


def bulk_tab(api: ScoringApi) -> None:
    st.subheader("Score a file of sessions")
    required = [s.name for s in CART_FEATURES if s.required]
    st.caption(
        f"A CSV with the columns {', '.join(required)} (optional: "
        f"{', '.join(s.name for s in app_data.optional_session_features())}; any other column, "
        "such as an id, is passed through)."
    )
    limit = app_data.upload_limit_mb()  # the API's cap (ECOM_API_MAX_UPLOAD_MB), not Streamlit's 200 MB
    upload = st.file_uploader(
        f"CSV file (at most {limit} MB, the scoring API's limit)",
        type=["csv"],
        key="bulk_upload",
        max_upload_size=limit,
    )
    example = app_data.example_sessions()
    st.download_button(
        "Download an example file",
        example.to_csv(index=False),
        "example_sessions.csv",
        "text/csv",
        key="example_download",
    )
    if st.button("Score the example file", key="score_example"):
        st.session_state["bulk_source"] = ("example_sessions.csv", example.to_csv(index=False).encode())
    if upload is not None:
        st.session_state["bulk_source"] = (upload.name, upload.getvalue())
    if "bulk_source" not in st.session_state:
        return
    name, data = st.session_state["bulk_source"]
    try:
        scored = api.score_csv(data, name)
    except ApiError as exc:
        st.error(f"Could not score {name}: {exc.message}")
        return
    bands = scored.frame["risk_band"].value_counts().reindex(["high", "medium", "low"], fill_value=0)
    st.success(
        f"Scored {len(scored.frame):,} sessions from {name} with model v{scored.model_version}: "
        f"{bands['high']:,} high, {bands['medium']:,} medium, {bands['low']:,} low risk."
    )
    _table(scored.frame.head(200))
    st.download_button(
        "Download the scored file", scored.csv, f"{Path(name).stem}_scored.csv", "text/csv", key="scored_download"
    )


def insights_tab(published: Path, shown: str) -> None:
    st.subheader("Purchase predictions: six questions")
    source = published / app_data.PREDICTED_PURCHASE
    if not source.exists():
        st.info(f"No purchase predictions published yet ({shown}/{source.name}): run `make demo`.")
        return
    for insight, frame in _insights(str(source), _mtime(source)):
        st.markdown(f"**{insight.description}**")
        if frame.empty:
            st.caption("no rows")
            continue
        st.altair_chart(insight_chart(app_data.insight_chart(insight, frame)), key=f"insight_{insight.name}")
        with st.expander(f"{insight.name}: the table"):
            _table(frame)


def monitoring_tab(reports_dir: Path, shown: str) -> None:
    st.subheader("Data drift")
    reports = app_data.latest_drift_reports(reports_dir)
    if not reports:
        st.info(
            f"No drift report yet in {shown}. Reports appear after the monitoring assets run "
            "(`make demo`, or the drift sensor in `make dev`)."
        )
        return
    for report in reports:
        st.markdown(f"**{report.model}**, batch {report.batch}")
        if report.summary is None:
            st.caption("no JSON summary beside this report")
        else:
            share = report.drift_share or 0.0
            cols = st.columns(2)
            cols[0].metric("Drifted columns", f"{share:.0%}")
            cols[1].markdown("Drifted: " + (", ".join(report.drifted_columns) or "none"))
            with st.expander("Per-column tests"):
                st.dataframe(report.columns_frame(), hide_index=True)
        # A toggle, not an expander: the report (megabytes of HTML) is only sent when asked for.
        if st.toggle(f"Show the full report ({report.html.name})", key=f"drift_show_{report.model}"):
            st.iframe(report.html, height=900)  # our own Evidently report, embedded as it is
        st.download_button(
            f"Download the report ({report.html.name})",
            report.html.read_bytes(),
            report.html.name,
            "text/html",
            key=f"drift_{report.model}",
        )
        st.caption(f"{shown}/{report.html.name}")


def main() -> None:
    st.set_page_config(page_title="ecom_assets: growth app", layout="wide")
    # The local profile's folders, or (cluster) scratch copies of the bucket's published/ and reports/.
    files = file_store(EcomPaths.from_env())
    published, reports = files.mirror(PUBLISHED), files.mirror(REPORTS)
    shown_published, shown_reports = files.url(PUBLISHED, ""), files.url(REPORTS, "")
    api = ScoringApi()
    st.title("Carts, checkout experiment and purchase predictions")
    st.caption(f"Snapshots from `{shown_published}`; scores from the API at {api.base_url}")
    tabs = st.tabs(["Real-time predictor", "A/B dashboard", "Bulk scoring", "Insights", "Monitoring"])
    with tabs[0]:
        predictor_tab(api)
    with tabs[1]:
        ab_tab(published, shown_published)
    with tabs[2]:
        bulk_tab(api)
    with tabs[3]:
        insights_tab(published, shown_published)
    with tabs[4]:
        monitoring_tab(reports, shown_reports)


if __name__ == "__main__":  # `streamlit run` and AppTest run the file as __main__
    main()

"""The growth team's app (`make app`): Streamlit over the published snapshots and the scoring API.

Five tabs: real-time predictor, A/B dashboard, bulk scoring, insights, monitoring. The logic lives
in `app_data` (snapshots, reports) and `api_client` (the API); this file is layout.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from ecom_assets.ecom_home import EcomPaths
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


def predictor_tab(api: ScoringApi) -> None:
    st.subheader("Will this cart be abandoned?")
    left, right = st.columns([1, 2])
    with left:
        session = {
            "total_views": st.slider("Product views in the session", 0, 60, 6, key="total_views"),
            "total_carts": st.slider("Add-to-carts", 0, 15, 1, key="total_carts"),
            "session_duration_minutes": st.slider(
                "Session duration (minutes)", 0.0, 180.0, 12.0, 0.5, key="session_duration_minutes"
            ),
            "experiment_group": st.radio(
                "Checkout experiment arm", EXPERIMENT_GROUPS, horizontal=True, key="experiment_group"
            ),
        }
        with st.expander("More about the session (optional; defaults otherwise)"):
            for spec in app_data.optional_session_features():
                if isinstance(spec.default, float):
                    session[spec.name] = st.number_input(
                        spec.description, min_value=0.0, value=spec.default, key=spec.name
                    )
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
            f"Scored: {session['total_views']} views, {session['total_carts']} add-to-carts, "
            f"{session['session_duration_minutes']:g} minutes, {session['experiment_group']} arm"
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


def ab_tab(paths: EcomPaths) -> None:
    st.subheader("Checkout experiment")
    results = _published(str(paths.published), app_data.AB_RESULTS, _mtime(paths.published / app_data.AB_RESULTS))
    by_arm = _published(
        str(paths.published), app_data.AB_SESSIONS_BY_ARM, _mtime(paths.published / app_data.AB_SESSIONS_BY_ARM)
    )
    if results is None or by_arm is None:
        st.info(
            f"No A/B results published yet in {paths.published}: run `make demo` (or the experiment "
            "assets in `make dev`)."
        )
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
        cols[2].metric("Revenue per user, control", f"{r.control:,.2f}")
        cols[3].metric("Revenue per user, treatment", f"{r.treatment:,.2f}", f"{r.absolute_lift:+,.2f}")
    sessions = by_arm[by_arm["experiment"] == experiment] if "experiment" in by_arm else by_arm
    if len(sessions):
        st.markdown("**Funnel by arm** (share of sessions reaching each stage)")
        st.bar_chart(app_data.session_funnel_by_arm(sessions), stack=False)
        st.dataframe(sessions, hide_index=True)
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
    upload = st.file_uploader("CSV file", type=["csv"], key="bulk_upload")
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
    st.dataframe(scored.frame.head(200), hide_index=True)
    st.download_button(
        "Download the scored file", scored.csv, f"{Path(name).stem}_scored.csv", "text/csv", key="scored_download"
    )


def insights_tab(paths: EcomPaths) -> None:
    st.subheader("Purchase predictions: six questions")
    source = paths.published / app_data.PREDICTED_PURCHASE
    if not source.exists():
        st.info(f"No purchase predictions published yet ({source}): run `make demo`.")
        return
    for insight, frame in _insights(str(source), _mtime(source)):
        st.markdown(f"**{insight.description}**")
        if frame.empty:
            st.caption("no rows")
            continue
        chart = frame.assign(**{insight.x: frame[insight.x].astype(str)})
        st.bar_chart(chart, x=insight.x, y=list(insight.ys), horizontal=insight.horizontal, stack=False)
        with st.expander(f"{insight.name}: the table"):
            st.dataframe(frame, hide_index=True)


def monitoring_tab(paths: EcomPaths) -> None:
    st.subheader("Data drift")
    reports = app_data.latest_drift_reports(paths.reports)
    if not reports:
        st.info(
            f"No drift report yet in {paths.reports}. Reports appear after the monitoring assets run "
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
        st.download_button(
            f"Open the full report ({report.html.name})",
            report.html.read_bytes(),
            report.html.name,
            "text/html",
            key=f"drift_{report.model}",
        )
        st.caption(str(report.html))


def main() -> None:
    st.set_page_config(page_title="ecom_assets: growth app", layout="wide")
    paths = EcomPaths.from_env()
    api = ScoringApi()
    st.title("Carts, checkout experiment and purchase predictions")
    st.caption(f"Snapshots from `{paths.published}`; scores from the API at {api.base_url}")
    tabs = st.tabs(["Real-time predictor", "A/B dashboard", "Bulk scoring", "Insights", "Monitoring"])
    with tabs[0]:
        predictor_tab(api)
    with tabs[1]:
        ab_tab(paths)
    with tabs[2]:
        bulk_tab(api)
    with tabs[3]:
        insights_tab(paths)
    with tabs[4]:
        monitoring_tab(paths)


if __name__ == "__main__":  # `streamlit run` and AppTest run the file as __main__
    main()

"""The scoring service: FastAPI over the production models in the MLflow registry.

`create_app()` builds the app; `serve()` runs it with uvicorn (what `ecom-assets serve` calls).
Request schemas come from the models' feature contracts (`ecom_assets.ml.feature_specs`) and the
rules in `request_scoring`, so the API, batch scoring and training agree on every feature. Any
invalid input is answered with a 4xx naming the offending field, never a 500; a missing production
model with a 503 saying how to train one. Requests are bounded in bytes, rows and columns, and
bulk requests are scored a few at a time, so one request cannot take the service's memory.
`/docs` (where `/` leads) is Swagger UI from the swagger-ui-bundle package's files, so it works
with no network; every endpoint has a realistic example body. Risk bands come from the served
model (`request_scoring.RiskBands`): "low" is exactly "below the decision threshold".
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
import orjson
import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError
from starlette.datastructures import Headers

from ecom_assets.ecom_home import env_float
from ecom_assets.ml.explain import explain
from ecom_assets.ml.feature_specs import (
    CART_FEATURES,
    CART_MODEL_NAME,
    PURCHASE_FEATURES,
    PURCHASE_MODEL_NAME,
    FeatureSpec,
    cart_feature_frame,
    coerce,
    defaulted_cart_features,
    with_cart_defaults,
)
from ecom_assets.ml.tracking import PRODUCTION, ProductionModel, tracking_uri
from ecom_assets.ml.training import predict_proba
from ecom_assets.serving.model_store import ModelStore
from ecom_assets.serving.request_scoring import (
    CART_RULES,
    InvalidInput,
    RiskBands,
    check_csv_width,
    check_row_keys,
    defaulted_fields,
    rule_for,
    shorten,
    validate_frame,
    waterfall_png,
)
from ecom_assets.serving.row_explainer import RowExplainer

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
MB = 1024 * 1024


@dataclass(frozen=True)
class ServingSettings:
    tracking_uri: str
    refresh_seconds: float = 5.0  # how often the registry is asked whether `production` moved
    max_body_bytes: int = 64 * 1024  # one session or one purchase row
    max_upload_bytes: int = 20 * MB  # /bulk_predict, JSON or CSV
    max_bulk_rows: int = 100_000
    max_bulk_columns: int = 64  # CSV columns, or distinct keys of the JSON rows, of one /bulk_predict
    bulk_concurrency: int = 2  # /bulk_predict requests parsed and scored at once; the others queue

    @classmethod
    def from_env(cls) -> ServingSettings:
        """Read when the service starts: MLFLOW_TRACKING_URI (as the assets read it), ECOM_API_*."""
        return cls(
            tracking_uri=tracking_uri(),
            refresh_seconds=env_float("ECOM_API_REFRESH_SECONDS", cls.refresh_seconds),
            max_upload_bytes=int(env_float("ECOM_API_MAX_UPLOAD_MB", cls.max_upload_bytes / MB) * MB),
            max_bulk_rows=int(env_float("ECOM_API_MAX_BULK_ROWS", cls.max_bulk_rows)),
            max_bulk_columns=int(env_float("ECOM_API_MAX_BULK_COLUMNS", cls.max_bulk_columns)),
            bulk_concurrency=max(1, int(env_float("ECOM_API_BULK_CONCURRENCY", cls.bulk_concurrency))),
        )


# --------------------------------------------------------------------------------------------
# schemas, generated from the feature contracts


def _not_a_boolean(value: Any) -> Any:
    # Pydantic's lax mode reads JSON true as 1; a count or an amount is never true or false.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "must be a number, not true or false")
    return value


def _field(spec: FeatureSpec, rules: dict) -> tuple[Any, Any]:
    rule = rule_for(spec, rules)
    if rule.kind == "category":
        kind: Any = Literal[spec.categories]  # type: ignore[valid-type]
    else:
        bounds: dict[str, Any] = {k: v for k, v in (("ge", rule.minimum), ("le", rule.maximum)) if v is not None}
        if rule.kind == "float":
            bounds["allow_inf_nan"] = False
        # Bounds inside the type, before the validator: NaN is then "not finite", not "not >= 0".
        number = int if rule.kind == "int" else float
        kind = Annotated[number, Field(**bounds), BeforeValidator(_not_a_boolean)]
    if spec.required:
        return kind, Field(..., description=spec.description)
    return kind | None, Field(None, description=f"{spec.description} (default {spec.default!r})")


_forbid = ConfigDict(extra="forbid")
CartSession = create_model(
    "CartSession", __config__=_forbid, **{spec.name: _field(spec, CART_RULES) for spec in CART_FEATURES}
)
CartSession.__doc__ = (
    "One shopping session at its first add-to-cart (the decision point): what the session showed "
    "before it, and the user's earlier sessions. The optional features take the documented default "
    "when left out, and the answer lists them in `defaulted_fields`."
)
PurchaseRow = create_model(
    "PurchaseRow", __config__=_forbid, **{spec.name: _field(spec, {}) for spec in PURCHASE_FEATURES}
)
PurchaseRow.__doc__ = "One user x item pair at a cutoff: the features of the purchase model, all required."


class ModelRef(BaseModel):
    name: str
    version: str
    alias: str = PRODUCTION


class Contribution(BaseModel):
    feature: str
    value: float | str
    contribution: float = Field(
        description="added to the base value, in `contribution_units`; positive raises the risk"
    )


class CartPrediction(BaseModel):
    abandonment_probability: float
    risk_band: Literal["low", "medium", "high"]
    will_abandon: bool = Field(description="probability >= the model's decision threshold")
    threshold: float
    model: ModelRef
    base_value: float = Field(description="the model's score for an average session, in `contribution_units`")
    contributions: list[Contribution]
    contribution_units: Literal["log-odds", "probability"] = Field(
        description="what base value + contributions add up to: the log-odds of the probability (boosting, "
        "logistic regression) or the probability itself (a random forest)"
    )
    defaulted_fields: list[str] = Field(
        description="optional features the request left out, scored at their documented default"
    )
    plot_png_base64: str | None = Field(None, description="the waterfall chart, with ?plot=true")


class PurchasePrediction(BaseModel):
    purchase_probability: float
    will_purchase: bool
    threshold: float
    model: ModelRef


class RiskBandEdges(BaseModel):
    low_below: float = Field(description="the decision threshold: below it, low risk and will_abandon false")
    high_from: float = Field(description="from here on, high risk (the training scores' 90th percentile)")


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    trained_at: str
    threshold: float
    risk_bands: RiskBandEdges | None = Field(None, description="the cart model's risk bands")
    holdout_metrics: dict[str, float]
    features: list[str]
    run_id: str


# --------------------------------------------------------------------------------------------
# the app


class BodySizeLimit:
    """413 with a clear message for a body over its endpoint's limit, whether declared or streamed."""

    def __init__(self, app, default: int, per_path: dict[str, int]) -> None:
        self.app, self.default, self.per_path = app, default, per_path

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        limit = self.per_path.get(path, self.default)
        message = f"request body too large: {path} accepts at most {limit:,} bytes"
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:  # a chunked body without Content-Length
                    raise HTTPException(status_code=413, detail=message)
            return event

        await self.app(scope, limited_receive, send)


def _no_model(store: ModelStore, name: str) -> HTTPException:
    # Says what to do, not where the registry is: a path on the server is nobody's business.
    slot = store.slot(name)
    return HTTPException(
        status_code=503,
        detail=(
            f"No '{PRODUCTION}' version of model '{name}' in the MLflow registry this service reads "
            f"(MLFLOW_TRACKING_URI, by default the one in ECOM_HOME){': ' + slot.error if slot.error else ''}. "
            "Train one: `make demo` (synthetic data, whole graph), `ecom-assets run` after landing files, "
            "or materialize the ml assets in `make dev`. The service picks up a newly promoted version "
            f"within {store.refresh_seconds:g} s, without a restart."
        ),
    )


def _model_ref(model: ProductionModel) -> dict:
    return {"name": model.name, "version": model.version, "alias": PRODUCTION}


MAX_ERRORS_SHOWN = 20  # a body of 10,000 unknown keys gets a short answer, not 10,000 lines


def _message(errors) -> str:
    parts = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        loc = [shorten(str(p)) for p in error.get("loc", ()) if p not in ("body", "query")]
        parts.append(f"{'.'.join(loc) or 'body'}: {shorten(str(error.get('msg', 'invalid')), 200)}")
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(parts) + (f"; and {more:,} more" if more > 0 else "")


def _plain_json(value: Any, depth: int = 0) -> Any:
    """Any part of a validation error as strict JSON: NaN and infinity as text, no lone surrogates,
    long text and deep or large containers cut short (the input is echoed, not the whole body)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() < 64 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return shorten(value, 200)
    if isinstance(value, (list, tuple)) and depth < 2 and len(value) <= 20:
        return [_plain_json(v, depth + 1) for v in value]
    if isinstance(value, dict) and depth < 2 and len(value) <= 20:
        return {shorten(str(k)): _plain_json(v, depth + 1) for k, v in value.items()}
    return shorten(repr(value), 200)


def _validation_detail(errors) -> list[dict]:
    keys = ("type", "loc", "msg", "input", "ctx")
    return [{k: _plain_json(e[k]) for k in keys if k in e} for e in errors[:MAX_ERRORS_SHOWN]]


def _header_list(names: list[str], limit: int = 1024) -> str:
    """Column names for a response header: each percent-encoded (RFC 3986), comma-separated, and
    cut at about `limit` characters with a count of the rest, so no name can break the header."""
    encoded, size = [], 0
    for name in names:
        item = quote(name.encode("utf-8", "replace"), safe="")
        if size + len(item) > limit:
            return ",".join(encoded) + f",(+{len(names) - len(encoded)} more)"
        encoded.append(item)
        size += len(item) + 1
    return ",".join(encoded)


def _attachment(filename: str | None) -> str:
    """Content-Disposition for the scored file, named after the upload (RFC 6266): a plain ASCII
    `filename` every client reads, and `filename*` with the exact name when it is not plain ASCII."""
    stem = re.split(r"[/\\]", filename or "")[-1]
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    name = f"{stem[:100] or 'sessions'}_scored.csv"
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    if fallback == name:
        return f'attachment; filename="{name}"'
    exact = quote(name.encode("utf-8", "replace"), safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def _scored_json(
    model: ProductionModel, frame: pd.DataFrame, extras: list[str], p: np.ndarray, defaulted: pd.Series
) -> bytes:
    """The JSON answer; extra input fields (ids) are passed through on each prediction."""
    edges = RiskBands.of(model)
    bands = edges.bands(p).tolist()
    decisions = (np.asarray(p) >= edges.low_below).tolist()
    rounded = np.round(p, 6).tolist()
    filled = [names.split(";") if names else [] for names in defaulted.tolist()]
    scores = [
        {"abandonment_probability": pr, "risk_band": b, "will_abandon": d, "defaulted_fields": f}
        for pr, b, d, f in zip(rounded, bands, decisions, filled)
    ]
    if extras:
        passthrough = frame[extras].astype(object).where(frame[extras].notna(), None).to_dict("records")
        predictions = [{**row, **score} for row, score in zip(passthrough, scores)]
    else:
        predictions = scores
    return orjson.dumps(
        {
            "model": _model_ref(model),
            "rows": len(predictions),
            "threshold": model.threshold,
            "risk_bands": {"low_below": edges.low_below, "high_from": edges.high_from},
            "passed_through": extras,
            "predictions": predictions,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
        default=str,
    )


SCORE_COLUMNS = ("abandonment_probability", "risk_band", "will_abandon", "defaulted_fields")

# "Try it out" bodies: what a caller really sends.
CART_EXAMPLES = {
    "returning_shopper": {
        "summary": "A returning shopper with three items in the cart",
        "value": {
            "views_before_cart": 6,
            "other_items_viewed": 3,
            "cart_item_views": 2,
            "minutes_to_first_cart": 9.5,
            "cart_item_price": 64.9,
            "experiment_group": "treatment",
            "previous_sessions": 7,
            "previous_purchases": 2,
            "previous_cart_sessions": 3,
            "hour_of_day": 20,
            "day_of_week": 6,
        },
    },
    "first_visit": {
        "summary": "A first visit: one item carted after a short browse (optional features left out)",
        "value": {
            "views_before_cart": 2,
            "other_items_viewed": 1,
            "cart_item_views": 1,
            "minutes_to_first_cart": 3.2,
            "cart_item_price": 39.99,
            "experiment_group": "control",
            "previous_sessions": 0,
            "previous_purchases": 0,
        },
    },
}
PURCHASE_EXAMPLE = {  # one user x item pair at a cutoff: an item viewed, carted, not yet bought
    "views": 5,
    "carts": 1,
    "removes": 0,
    "purchases": 0,
    "interaction_score": 8,
    "funnel_depth": 2,
    "engagement_score": 3,
    "sessions_with_item": 2,
    "days_since_last_interaction": 1.5,
    "days_since_first_interaction": 6.0,
    "price": 49.9,
    "item_views": 320,
    "item_carts": 41,
    "item_purchases": 12,
    "item_visitors": 150,
    "item_buyer_rate": 0.08,
    "user_events": 64,
    "user_sessions": 9,
    "user_distinct_items": 23,
    "user_carts": 6,
    "user_purchases": 2,
    "user_days_since_last_event": 0.5,
    "user_item_share": 0.09,
    "user_events_per_session": 7.1,
    "user_cart_rate": 0.094,
    "user_purchases_per_session": 0.22,
    "user_purchases_per_cart": 0.33,
    "user_sessions_per_week": 2.3,
    "item_session_share": 0.22,
}
BULK_JSON_EXAMPLE = [
    {"session_id": "s-1001", **CART_EXAMPLES["returning_shopper"]["value"]},
    {"session_id": "s-1002", **CART_EXAMPLES["first_visit"]["value"]},
]
BULK_CSV_EXAMPLE = (
    "session_id,views_before_cart,other_items_viewed,cart_item_views,minutes_to_first_cart,cart_item_price,"
    "experiment_group,previous_sessions,previous_purchases\n"
    "s-1001,6,3,2,9.5,64.9,treatment,7,2\n"
    "s-1002,2,1,1,3.2,39.99,control,0,0\n"
)
SWAGGER_ASSETS = "/docs-assets"  # Swagger UI's files, from the swagger-ui-bundle package: no CDN


_FIRST_CART = {  # the least a session can show at its first add-to-cart
    "views_before_cart": 0,
    "other_items_viewed": 0,
    "cart_item_views": 0,
    "minutes_to_first_cart": 0.0,
    "cart_item_price": 0.0,
    "previous_sessions": 0,
    "previous_purchases": 0,
}
PROBE_SESSIONS = [  # the fast explanation path is checked against ml.explain on these
    {
        **_FIRST_CART,
        "views_before_cart": 1,
        "cart_item_views": 1,
        "minutes_to_first_cart": 1.0,
        "experiment_group": "control",
    },
    {
        "views_before_cart": 12,
        "other_items_viewed": 4,
        "cart_item_views": 3,
        "minutes_to_first_cart": 25.5,
        "cart_item_price": 180.0,
        "experiment_group": "treatment",
        "previous_sessions": 5,
        "previous_purchases": 2,
        "previous_cart_sessions": 3,
        "hour_of_day": 9,
        "day_of_week": 6,
    },
    {**_FIRST_CART, "experiment_group": "treatment"},
]


def session_row(session: dict) -> dict:
    """A validated session with the documented defaults filled in."""
    return with_cart_defaults(session)


def create_app(settings: ServingSettings | None = None, store: ModelStore | None = None) -> FastAPI:
    settings = settings or ServingSettings.from_env()
    fast_paths: dict[tuple[str, str], RowExplainer | None] = {}

    def warm_up(model: ProductionModel) -> None:
        """Before a version takes traffic: build its checked fast path and score once."""
        if model.name == CART_MODEL_NAME:
            rows = [session_row(r) for r in PROBE_SESSIONS]
            fast_paths[(model.name, model.version)] = RowExplainer.build(model.model, CART_FEATURES, rows)
            model.predict_proba(cart_feature_frame(rows), CART_FEATURES)
            live = store.get(model.name)
            keep = {model.version, live.version if live else None}
            for key in [k for k in fast_paths if k[0] == model.name and k[1] not in keep]:
                fast_paths.pop(key, None)

    store = store or ModelStore(
        [CART_MODEL_NAME, PURCHASE_MODEL_NAME], settings.tracking_uri, settings.refresh_seconds, on_load=warm_up
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(store.start)
        yield
        store.stop()

    app = FastAPI(
        title="ecom_assets scoring service",
        summary="Cart-abandonment and purchase probabilities from the production models.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served below from local assets
        redoc_url=None,  # ReDoc would load from a CDN
    )
    app.add_middleware(
        BodySizeLimit, default=settings.max_body_bytes, per_path={"/bulk_predict": settings.max_upload_bytes}
    )
    app.state.store, app.state.settings = store, settings
    from swagger_ui_bundle import swagger_ui_path

    app.mount(SWAGGER_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/", include_in_schema=False)
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root_path = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root_path}{app.openapi_url}",
            title=f"{app.title} - API docs",
            oauth2_redirect_url=f"{root_path}/docs/oauth2-redirect",
            swagger_js_url=f"{root_path}{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root_path}{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root_path}{SWAGGER_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},  # the online validator badge calls out
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        return JSONResponse(
            status_code=422, content={"message": _message(errors), "detail": _validation_detail(errors)}
        )

    @app.exception_handler(InvalidInput)
    async def _refused(request: Request, exc: InvalidInput):
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.message, "errors": exc.errors})

    def require(name: str) -> ProductionModel:
        model = store.get(name)
        if model is None:
            raise _no_model(store, name)
        return model

    @app.get("/health")
    async def health() -> dict:
        """Liveness and which model versions are being served (200 even without models)."""
        models = {
            name: {"version": m.version if (m := store.get(name)) else None, "error": store.slot(name).error}
            for name in store.names
        }
        ready = all(v["version"] is not None for v in models.values())
        return {"status": "ok" if ready else "degraded", "models": models}

    @app.get("/model", response_model=ModelInfo)
    async def model_info(name: str = Query(CART_MODEL_NAME, description="registered model name")) -> dict:
        """The production version of a model: when it was trained and how it scored on the holdout."""
        if name not in store.names:
            raise HTTPException(status_code=404, detail=f"unknown model {name!r}; this service serves {store.names}")
        model = require(name)
        edges = RiskBands.of(model) if name == CART_MODEL_NAME else None
        return {
            "name": model.name,
            "version": model.version,
            "alias": PRODUCTION,
            "trained_at": model.trained_at,
            "threshold": model.threshold,
            "risk_bands": {"low_below": edges.low_below, "high_from": edges.high_from} if edges else None,
            "holdout_metrics": model.holdout_metrics,
            "features": model.features,
            "run_id": model.run_id,
        }

    # The one-row endpoints are `async`: their work is a millisecond of CPU, cheaper inline on the
    # event loop than a hop to the thread pool. Bulk scoring runs in the thread pool.
    @app.post("/predict", response_model=CartPrediction, response_model_exclude_none=True)
    async def predict(
        session: Annotated[CartSession, Body(openapi_examples=CART_EXAMPLES)],  # type: ignore[valid-type]
        plot: bool = Query(False, description="add the waterfall chart as a base64 PNG"),
    ):
        """One session -> abandonment probability, risk band and each feature's contribution."""
        model = require(CART_MODEL_NAME)
        request = session.model_dump()
        row = session_row(request)
        fast = fast_paths.get((model.name, model.version))
        why = (
            fast.explain(row) if fast is not None else await run_in_threadpool(explain, model.model, row, CART_FEATURES)
        )
        p = why.probability
        units = getattr(why, "units", "log-odds")  # the fast path explains boosting only: log-odds
        edges = RiskBands.of(model)
        contributions = [
            {"feature": f, "value": _plain(why.values.get(f)), "contribution": round(c, 6)}
            for f, c in why.contributions.items()
        ]
        out = {
            "abandonment_probability": round(p, 6),
            "risk_band": edges.band(p),
            "will_abandon": edges.will_abandon(p),
            "threshold": model.threshold,
            "model": _model_ref(model),
            "base_value": round(why.base_value, 6),
            "contributions": contributions,
            "contribution_units": units,
            "defaulted_fields": defaulted_cart_features(request),
        }
        if plot:
            png = await run_in_threadpool(  # drawing takes ~100 ms: off the event loop
                waterfall_png,
                why.base_value,
                [(c["feature"], c["value"], c["contribution"]) for c in contributions],
                p,
                units=units,
            )
            out["plot_png_base64"] = base64.b64encode(png).decode("ascii")
        # Built to the CartPrediction schema above; returned as bytes so it is not validated twice.
        return Response(orjson.dumps(out), media_type="application/json")

    @app.post("/purchase/predict", response_model=PurchasePrediction)
    def purchase_predict(
        row: Annotated[  # type: ignore[valid-type]
            PurchaseRow,
            Body(
                openapi_examples={
                    "carted_item": {"summary": "An item carted, not bought yet", "value": PURCHASE_EXAMPLE}
                }
            ),
        ],
    ) -> dict:
        """One user x item feature row -> the probability that the user buys the item in the horizon."""
        model = require(PURCHASE_MODEL_NAME)
        frame = coerce(pd.DataFrame([row.model_dump()]), PURCHASE_FEATURES)
        p = float(model.predict_proba(frame, PURCHASE_FEATURES)[0])
        return {
            "purchase_probability": round(p, 6),
            "will_purchase": p >= model.threshold,
            "threshold": model.threshold,
            "model": _model_ref(model),
        }

    def score_frame(frame: pd.DataFrame):
        model = require(CART_MODEL_NAME)
        frame = frame.drop(columns=[c for c in SCORE_COLUMNS if c in frame.columns])
        features, extras = validate_frame(
            frame, CART_FEATURES, CART_RULES, settings.max_bulk_rows, settings.max_bulk_columns
        )
        fast = fast_paths.get((model.name, model.version))
        p = fast.predict_proba(features) if fast is not None else predict_proba(model.model, features)
        return model, frame, features, extras, p, defaulted_fields(frame, CART_FEATURES)

    def score_json(body: bytes):
        try:
            rows = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"body is not valid JSON: {exc}", 400) from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidInput(
                'send a JSON list of sessions (objects), e.g. [{"views_before_cart": 3, ...}], or a CSV file'
            )
        if len(rows) > settings.max_bulk_rows:
            raise InvalidInput(
                f"{len(rows):,} rows is more than the {settings.max_bulk_rows:,} one request may score: split the list",
                413,
            )
        check_row_keys(rows, settings.max_bulk_columns)  # before a table is built from them
        model, frame, _, extras, p, defaulted = score_frame(pd.DataFrame.from_records(rows))
        return Response(
            _scored_json(model, frame, extras, p, defaulted),
            media_type="application/json",
            headers={"X-Model-Version": model.version},
        )

    def score_csv(data: bytes, filename: str):
        if not data or data.isspace():  # not .strip(): that copies a 20 MB body to look at its ends
            raise InvalidInput("the CSV file is empty: send a header line and at least one row", 400)
        check_csv_width(data, settings.max_bulk_columns)  # before pandas splits a million names
        most = settings.max_bulk_rows
        try:  # one row past the limit is enough to refuse: the rest is never parsed
            frame = pd.read_csv(io.BytesIO(data), skipinitialspace=True, nrows=most + 1)
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise InvalidInput(f"could not read the CSV: {shorten(str(exc).strip(), 300)}", 400) from exc
        if len(frame) > most:
            raise InvalidInput(
                f"at least {most + 1:,} rows, more than the {most:,} one request may score: split the file", 413
            )
        model, frame, _, extras, p, defaulted = score_frame(frame)
        edges = RiskBands.of(model)
        frame["abandonment_probability"] = np.round(p, 6)  # `frame` is score_frame's own copy
        frame["risk_band"] = edges.bands(p)
        frame["will_abandon"] = np.asarray(p) >= edges.low_below
        frame["defaulted_fields"] = defaulted  # ";"-separated, empty when every feature was given
        return Response(
            frame.to_csv(index=False),
            media_type="text/csv",
            headers={
                # Header values must be Latin-1 without line breaks: names the caller chose are encoded.
                "Content-Disposition": _attachment(filename),
                "X-Model-Version": model.version,
                "X-Passed-Through": _header_list(extras),
            },
        )

    # Parsing and scoring a full-size bulk request peaks at a few hundred MB: only a few at a time,
    # the others wait their turn with their bodies already received (each within the upload limit).
    bulk_slots = asyncio.Semaphore(settings.bulk_concurrency)

    async def in_turn(score, *args):
        async with bulk_slots:
            return await run_in_threadpool(score, *args)

    @app.post(
        "/bulk_predict",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/CartSession"}},
                        "example": BULK_JSON_EXAMPLE,
                    },
                    "text/csv": {"schema": {"type": "string"}, "example": BULK_CSV_EXAMPLE},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                },
            }
        },
        responses={
            200: {
                "description": "JSON in, JSON out; CSV in, the same CSV with "
                "`abandonment_probability`, `risk_band`, `will_abandon` and `defaulted_fields` appended"
            }
        },
    )
    async def bulk_predict(request: Request):
        """Many sessions at once, vectorised: a JSON list, a CSV body, or an uploaded CSV file (`file`)."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            async with request.form(max_files=1, max_fields=5) as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise InvalidInput(
                        "upload the CSV as a file in the form field 'file' (curl -F file=@sessions.csv ...)"
                    )
                data = await upload.read()
                name = upload.filename or "sessions.csv"
            return await in_turn(score_csv, data, name)
        body = await request.body()
        if content_type in ("text/csv", "application/csv", "text/plain"):
            return await in_turn(score_csv, body, "sessions.csv")
        if content_type in ("application/json", ""):
            return await in_turn(score_json, body)
        raise InvalidInput(
            f"unsupported content type {content_type!r}: send application/json, text/csv "
            "or multipart/form-data with a CSV file",
            415,
        )

    app.description = (
        "Risk bands come from the served cart model (`GET /model`, `risk_bands`): low below its decision "
        "threshold (exactly when `will_abandon` is false), medium from the threshold, high from the "
        "training scores' 90th percentile. "
        "A session is scored at its first add-to-cart: send what it showed before that moment. "
        "Every answer lists the optional features it filled in `defaulted_fields`; they default to: "
        + ", ".join(f"{s.name}={s.default!r}" for s in CART_FEATURES if not s.required)
        + "."
    )
    return app


def _plain(value: Any) -> float | str:
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer, int)):
        return float(value)
    return str(value)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "info") -> None:
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)

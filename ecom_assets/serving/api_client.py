"""A small client of the scoring API, for the Streamlit app (and anyone scripting against it)."""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass

import httpx
import pandas as pd

DEFAULT_API_URL = "http://127.0.0.1:8000"


def api_url() -> str:
    return os.environ.get("ECOM_API_URL", "").strip().rstrip("/") or DEFAULT_API_URL


class ApiError(RuntimeError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.status_code = message, status_code


@dataclass
class ScoredFile:
    frame: pd.DataFrame
    csv: bytes
    model_version: str


class ScoringApi:
    def __init__(self, base_url: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = (base_url or api_url()).rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = httpx.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"the scoring API at {self.base_url} is not reachable ({type(exc).__name__}): "
                "start it with `make serve`"
            ) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("message") or body.get("detail") or response.text
            except ValueError:
                message = response.text
            raise ApiError(str(message), response.status_code)
        return response

    def health(self) -> dict:
        return self._call("GET", "/health").json()

    def model(self, name: str | None = None) -> dict:
        return self._call("GET", "/model", params={"name": name} if name else None).json()

    def predict(self, session: dict, plot: bool = False) -> dict:
        out = self._call("POST", "/predict", params={"plot": "true"} if plot else None, json=session).json()
        if out.get("plot_png_base64"):
            out["plot_png"] = base64.b64decode(out["plot_png_base64"])
        return out

    def score_csv(self, data: bytes, filename: str = "sessions.csv") -> ScoredFile:
        response = self._call("POST", "/bulk_predict", files={"file": (filename, data, "text/csv")})
        return ScoredFile(
            pd.read_csv(io.BytesIO(response.content)), response.content, response.headers.get("x-model-version", "")
        )

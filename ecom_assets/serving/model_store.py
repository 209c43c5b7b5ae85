"""The production models the service answers with, kept current without a restart.

A `ModelStore` loads `models:/<name>@production` for each model at start-up (through
`ecom_assets.ml.tracking`), then a background thread asks the registry every `refresh_seconds`
which version the alias points at, a single cheap query, and loads a newly promoted version beside
the old one before swapping the reference. Requests only read that reference: they never wait for
the registry, and a request in flight keeps the version it started with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ecom_assets.ml.tracking import PRODUCTION, ProductionModel, load_production_model, production_version

log = logging.getLogger(__name__)


@dataclass
class ModelSlot:
    name: str
    model: ProductionModel | None = None
    error: str | None = None  # why there is no model (or why the last reload failed), fit for a client
    checked_at: float = 0.0


class ModelStore:
    def __init__(
        self,
        names: Sequence[str],
        tracking_uri: str,
        refresh_seconds: float,  # ServingSettings.refresh_seconds (ECOM_API_REFRESH_SECONDS)
        loader: Callable[[str, str], ProductionModel] = load_production_model,
        version_probe: Callable[[str, str], str | None] = production_version,
        on_load: Callable[[ProductionModel], None] | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.refresh_seconds = refresh_seconds
        self._loader, self._probe, self._on_load = loader, version_probe, on_load
        self._slots = {name: ModelSlot(name) for name in names}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()

    # -- reading (request path) ---------------------------------------------------------------
    def get(self, name: str) -> ProductionModel | None:
        return self._slots[name].model

    def slot(self, name: str) -> ModelSlot:
        return self._slots[name]

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    # -- refreshing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Load any model whose production alias moved (or appeared) since the last look."""
        with self._reload_lock:
            for slot in self._slots.values():
                self._refresh_slot(slot)

    def _refresh_slot(self, slot: ModelSlot) -> None:
        try:
            version = self._probe(self.tracking_uri, slot.name)
        except Exception as exc:  # the registry is unreachable: keep serving what we have
            # Clients see the kind of failure; its text (paths, URIs) goes to the service's log only.
            error = f"the registry could not be read ({type(exc).__name__}; the service log has the details)"
            if slot.error != error:
                log.warning("registry lookup for %s failed: %s: %s", slot.name, type(exc).__name__, exc)
            slot.error = error
            return
        finally:
            slot.checked_at = time.time()
        if version is None:
            if slot.model is None:
                slot.error = f"no '{PRODUCTION}' version registered"
            return  # the alias vanished: keep the last good model rather than go dark
        if slot.model is not None and slot.model.version == version:
            return
        try:
            loaded = self._loader(slot.name, self.tracking_uri)
        except LookupError:
            slot.error = f"no '{PRODUCTION}' version registered"
            return
        except Exception as exc:
            slot.error = f"loading version {version} failed ({type(exc).__name__}; the service log has the details)"
            log.exception("loading %s version %s failed", slot.name, version)
            return
        if self._on_load is not None:
            try:  # warm the new version up before it takes traffic
                self._on_load(loaded)
            except Exception:
                log.exception("warming up %s version %s failed", slot.name, loaded.version)
        previous = slot.model.version if slot.model else None
        slot.model, slot.error = loaded, None
        log.info("serving %s version %s (was %s)", slot.name, loaded.version, previous)

    def start(self) -> ModelStore:
        """Load what exists now, then keep polling in a daemon thread."""
        self.refresh()
        if self.refresh_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="model-refresh", daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except Exception:  # never let the refresher die
                log.exception("model refresh failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

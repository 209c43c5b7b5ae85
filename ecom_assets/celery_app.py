"""The Celery app the workers run (`ecom-assets worker`, or `celery -A ecom_assets.celery_app worker`).

It is dagster_celery's own app and step task, configured from the same variables and settings as the
executor (ecom_assets/executors.py), so the run that submits a step and the worker that takes it agree
on the broker, the result backend and the acknowledgement rules.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from ecom_assets.executors import CELERY_SETTINGS, celery_urls

_broker, _backend = celery_urls()
app = make_app({"broker": _broker, "backend": _backend, "config_source": CELERY_SETTINGS})
execute_plan = create_task(app)

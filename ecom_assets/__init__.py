"""ecom_assets: e-commerce clickstream to decisions, as Dagster software-defined assets."""

import os

# OpenMP threads (HistGradientBoosting's) that wait at a barrier sleep instead of spinning. Spinning
# pays on an idle machine, but beside another busy process (a run beside a sensor's ingest, the API, on 2
# cores) it burns the other's core: a 300k-row fit took 60-73 s (17 s of CPU) under
# load against 6-7 s (2.2 s) with PASSIVE. Set here, before anything loads scikit-learn's libgomp,
# which reads it once; an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

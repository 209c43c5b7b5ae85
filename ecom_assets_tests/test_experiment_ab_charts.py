"""experiment.ab_charts: the user funnel by arm narrows from view to cart to purchase."""

from __future__ import annotations

from ecom_assets.experiment.ab_charts import user_funnel_by_arm
from ecom_assets_tests.simulated_users import users_with_funnel


def test_user_funnel_by_arm_narrows_from_view_to_purchase():
    funnel = user_funnel_by_arm(users_with_funnel()).set_index(["experiment_group", "stage"])["share"]
    for arm in ("control", "treatment"):
        assert funnel[(arm, "view")] == 1.0 >= funnel[(arm, "cart")] >= funnel[(arm, "purchase")]

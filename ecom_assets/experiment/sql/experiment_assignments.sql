-- One row per user seen: the arm of the configured experiment (salted md5, the generator's hash)
-- and the legacy md5-parity arm, so the seed project's results can be reproduced.
-- Exposure is the user's first appearance: every user meets the checkout's entry points.
CREATE OR REPLACE TABLE experiment.assignments AS
SELECT
    user_id,
    CAST($experiment_key AS VARCHAR)    AS experiment_key,
    CAST($treatment_share AS DOUBLE)    AS treatment_share,
    experiment_group(user_id)           AS experiment_group,
    legacy_experiment_group(user_id)    AS legacy_group,
    first_seen                          AS exposed_at
FROM gold.dim_users
ORDER BY user_id;

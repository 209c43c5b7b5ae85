-- Each model family's holdout PR-AUC with its baselines, the champion first, then best first, with
-- the production version (ml.<model> tables).
SELECT model, role, pr_auc, no_skill_pr_auc, pr_auc_lift, brier_skill,
       any_value(production_version) OVER () AS production_version
FROM query_table($model_table)
ORDER BY role = 'champion' DESC, pr_auc DESC

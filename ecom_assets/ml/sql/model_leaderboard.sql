-- Each model family's holdout PR-AUC, best first, with the production version (ml.<model> tables).
SELECT model, pr_auc, any_value(production_version) OVER () AS production_version
FROM query_table($model_table)
ORDER BY pr_auc DESC

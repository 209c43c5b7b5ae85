-- The verdict of the configured experiment (not the legacy placebo split), for the run summary.
SELECT any_value(verdict) FROM experiment.ab_test_results WHERE experiment <> $legacy_experiment

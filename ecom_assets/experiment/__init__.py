"""The checkout A/B experiment: assignment (shared with the generator) and its analysis."""

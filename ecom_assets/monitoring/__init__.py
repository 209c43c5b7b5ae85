"""Model monitoring: Evidently drift between a model's training features and what it scores now."""

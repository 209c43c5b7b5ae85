"""Software-defined assets, one module per layer; SQL lives in sql/ beside them."""

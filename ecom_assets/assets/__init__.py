"""Software-defined assets, one thin module per layer: read, call the plain package, write, report."""

"""One module per `berth-runtime` verb group, like runc's top-level <verb>.go files."""

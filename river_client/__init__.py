"""river_client: see the module docstrings."""

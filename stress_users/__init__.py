"""stress_users: see the module docstrings."""

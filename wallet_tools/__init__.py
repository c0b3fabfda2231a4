"""wallet_tools: see the module docstrings."""

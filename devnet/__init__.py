"""The local stack for runs and tests: anvil, the membership contract, and the River dev node.

Nothing in the product imports this package; tests and the local run (`python -m devnet`) do.
"""

"""stress_users: the Locust plugin that runs the Towns chat stress test on River.

Import `stress_users.plugin` (the root `locustfile.py` does) to register the options, the
root flow on the master, the followers on the workers and the reports. The package itself
imports nothing from Locust, so its configuration helpers can be used anywhere.
"""

"""Locust entry point of the River chat stress run: everything lives in `stress_users`.

locust -f locustfile.py --headless -u 20 ...   (see README.md, "Runs")
"""

from stress_users.plugin import Follower

__all__ = ["Follower"]

"""Cluster DNS served by the daemon: Service and pod names answered from the API, the rest forwarded."""

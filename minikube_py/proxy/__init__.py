"""The service proxy (our kube-proxy): Services and EndpointSlices -> one nftables table per cluster.

`rules` builds the table as data, `nftables` writes it through libnftables, `proxy` is the
controller that keeps it in step with the API. It is a client of the API like the controllers and
never reads the store.
"""

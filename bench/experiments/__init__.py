"""Experiment scaffolding beside the figure harness: the A/B runners (``ab`` in process,
``ab_http`` through real server processes), the variants they compare (``variants``,
served by ``variant_server``) and the py-spy profiler (``profile``).

A variant is built by construction, never by patching StemeDB: a collaborator passed to
``Database`` (a gate that accepts every write) or an argument of ``server.run``
(``with_metrics=False``).
"""

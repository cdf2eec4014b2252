"""Experiment scaffolding beside the figure harness: the A/B runners (``ab`` in process,
``ab_http`` through real server processes), the launcher that serves a variant
(``variant_server``) and the py-spy profiler (``profile``).
"""

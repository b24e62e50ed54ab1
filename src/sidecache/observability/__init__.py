"""What the gateway reports about itself: metrics, ``/stats``, access log, dashboard.

Every finished request becomes one ``record.RequestRecord``; ``recorder.Recorder`` hands it to
``metrics.Metrics`` (Prometheus), ``stats.Stats`` (``/stats`` and the dashboard) and
``logs.AccessLog`` (one JSON line). ``dashboard.dashboard_html()`` is the page.
"""

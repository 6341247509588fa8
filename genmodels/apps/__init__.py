"""Using trained models: one module per application (e.g. ``anomaly``: ``genmodels anomaly``)."""

"""drc's processes: the worker, the dev stack and the ``drc`` command line."""

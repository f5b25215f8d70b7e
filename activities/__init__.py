"""Every side effect of drc: probes, process control, and the activities that use them."""

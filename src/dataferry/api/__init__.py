"""HTTP front doors: REST (and later RPC doors and the dashboard) over the service layer."""

"""Records: collections of JSON records, their change feed, and replication between instances."""

"""One module per URL family; a route parses, calls a service in a transaction, then enqueues."""

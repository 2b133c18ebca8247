"""execgate's gateway and service in one process: REST calls the service without a network hop."""

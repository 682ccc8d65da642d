"""Network identities of a project: MAC addresses now, addresses and leases as they come."""

"""Durable background work on the Ficus database: outbox consumers and leases."""

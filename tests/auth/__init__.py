"""Tests of the SMART authorization server and policy (ficus.auth)."""

"""Agents the lab runs as scripts in its namespaces (benign users, attack helpers, servers)."""

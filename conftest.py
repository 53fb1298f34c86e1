"""Root conftest: the suite's pytest plugin and its step definitions, loaded once.

Step modules are plugins (not imported into test modules), so scenarios are collected once.
"""
pytest_plugins = [
    "railiance_conformance.plugin",
    "steps.host_steps",
    "steps.cluster_steps",
    "steps.repo_steps",
]

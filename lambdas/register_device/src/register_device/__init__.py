"""The register_device function of the fleet registry.

Lambda entry point: ``register_device.handler.handler``.
"""

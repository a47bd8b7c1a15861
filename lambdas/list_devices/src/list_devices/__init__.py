"""The list_devices function of the fleet registry.

Lambda entry point: ``list_devices.handler.handler``.
"""

"""The create_project function of the fleet registry.

Lambda entry point: ``create_project.handler.handler``.
"""

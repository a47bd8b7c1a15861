"""The local target: AWS emulator, local API, local PostgreSQL, detached processes."""

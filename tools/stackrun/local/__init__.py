"""The local target (``--local``).

emulator/    the AWS emulator (moto over HTTPS, its gaps closed), its CA and lifecycle
api/         the deployed HTTP APIs answered locally by the deployed function code
postgres/    real PostgreSQL servers: behind the emulated RDS instance, and for the tests
detached.py  starting, finding and stopping the detached helper processes
"""

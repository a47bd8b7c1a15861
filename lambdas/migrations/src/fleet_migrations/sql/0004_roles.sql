-- 0004_roles: one database role per job, each allowed exactly what its functions do.
--
--   fleet_reader  list_devices: reads projects and their devices; nothing else, no writes.
--   fleet_writer  create_project and register_device: reads and adds teams, projects and
--                 devices; never deletes, truncates or changes the schema (the tables belong
--                 to the master user, and only an owner may ALTER or DROP a table).
--
-- Only the migrations function connects as the master user. The roles are created here
-- without LOGIN and without a password: the migrations function gives each a generated
-- password (sending the server a SCRAM verifier, never the password) and keeps it in the
-- role's own Secrets Manager secret, which only that role's functions may read
-- (fleet_migrations/roles.py). A later migration that adds a table grants on it explicitly.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fleet_reader') THEN
        CREATE ROLE fleet_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fleet_writer') THEN
        CREATE ROLE fleet_writer NOLOGIN;
    END IF;
    EXECUTE format(
        'GRANT CONNECT ON DATABASE %I TO fleet_reader, fleet_writer', current_database()
    );
END
$$;

GRANT USAGE ON SCHEMA public TO fleet_reader, fleet_writer;

GRANT SELECT ON project, device TO fleet_reader;

GRANT SELECT, INSERT ON team, project, device TO fleet_writer;
-- SELECT ... FOR KEY SHARE (a team while its project is added, a project while its device is
-- added) requires the UPDATE privilege on one column of the table. It is granted on the
-- identity column only, which nobody can set to a value (GENERATED ALWAYS) and which the
-- foreign keys keep from changing while referenced.
GRANT UPDATE (id) ON team, project TO fleet_writer;

-- 0002_devices: what a project holds: devices, models and apps.
--
-- Everything here belongs to one project and is deleted with it (ON DELETE CASCADE): deleting
-- a project is the explicit, destructive act; 0001 already stops a team delete from reaching it.

-- Keeps updated_at honest whatever client writes the row.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE device (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint      NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    serial     text        NULL,
    attributes jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Device lookup by (project_id, name); also serves the foreign key.
    CONSTRAINT device_project_id_name_key UNIQUE (project_id, name),
    CONSTRAINT device_name_check
        CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name)),
    CONSTRAINT device_serial_check
        CHECK (serial IS NULL OR (char_length(serial) BETWEEN 1 AND 128 AND serial = btrim(serial))),
    CONSTRAINT device_attributes_check CHECK (jsonb_typeof(attributes) = 'object')
);
-- Keyset pagination of a project's devices:
--   WHERE project_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4
CREATE INDEX device_project_id_created_at_id_idx ON device (project_id, created_at, id);

CREATE TRIGGER device_set_updated_at
    BEFORE UPDATE ON device
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE model (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint      NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_project_id_name_key UNIQUE (project_id, name),
    CONSTRAINT model_name_check
        CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name))
);

CREATE TABLE app (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint      NOT NULL REFERENCES project (id) ON DELETE CASCADE,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_project_id_name_key UNIQUE (project_id, name),
    CONSTRAINT app_name_check
        CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name))
);
